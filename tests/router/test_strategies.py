from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from core.errors import InvalidRequest
from core.settings import Settings
from router.decision import RoutingDecision
from router.encoder import Encoder
from router.outcomes import Outcome, OutcomeLog
from router.quality import QualityParams
from router.router import Router, quality_params
from router.strategies import cost as cost_module
from router.strategies.base import FitContext
from router.strategies.cost import CostStrategy, calibrate_threshold, choose
from router.strategies.head import HeadStrategy
from router.strategies.knn import KnnStrategy
from router.strategies.skills import SkillStrategy
from tests.router.conftest import make_expert

COOK = ["how long do I boil an egg", "a recipe for pancakes", "how to roast vegetables", "bake bread at home"]
BANK = ["what is my account balance", "transfer money to savings", "my card was declined", "pay my credit card bill"]
TRAVEL = ["book a flight to Paris", "do I need a visa for Japan", "find a hotel in Rome", "rent a car at the airport"]


def test_knn_updates_incrementally_and_reloads_its_index(encoder: Encoder, tmp_path: Path) -> None:
    context = FitContext(encoder, state_dir=tmp_path)
    knn = KnnStrategy()
    knn.fit([make_expert("cook", COOK), make_expert("bank", BANK)], context)
    assert knn.last_encoded == 8 and len(list(tmp_path.glob("knn-*.faiss"))) == 1
    knn.fit([make_expert("cook", COOK), make_expert("bank", BANK), make_expert("travel", TRAVEL)], context)
    assert knn.last_encoded == 4  # only the new expert's exemplars were encoded
    knn.fit([make_expert("cook", COOK[:2]), make_expert("travel", TRAVEL)], context)
    assert knn.last_encoded == 0 and len(knn.index or []) == 6  # removals need no encoding
    query = encoder.encode(["cheap flights to Madrid"])[0]
    reloaded = KnnStrategy()
    reloaded.fit([make_expert("cook", COOK[:2]), make_expert("travel", TRAVEL)], context)
    assert reloaded.last_encoded == 0  # everything came from disk
    assert max(reloaded.score(query), key=reloaded.score(query).get) == "travel"
    assert reloaded.score(query) == pytest.approx(knn.score(query))


def test_head_gives_calibrated_probabilities(encoder: Encoder) -> None:
    head = HeadStrategy()
    head.fit([make_expert("cook", COOK), make_expert("bank", BANK), make_expert("travel", TRAVEL)], FitContext(encoder))
    scores = head.score(encoder.encode(["how do I make a cake"])[0])
    assert sum(scores.values()) == pytest.approx(1.0)
    assert max(scores, key=scores.get) == "cook"
    assert 0.34 < scores["cook"] < 0.999  # calibrated: confident, not certain on 4 exemplars


def test_skill_profiles_follow_outcomes(encoder: Encoder) -> None:
    experts = [make_expert("mathy", [], skills=["algebra"]), make_expert("wordy", [], skills=["poetry"])]
    outcomes = OutcomeLog()
    # mathy turns out bad at algebra and wordy good at it: the profile must follow the evidence.
    for q in ["solve 3x + 2 = 11", "factor x^2 - 9", "simplify (a+b)^2", "solve for y: 2y = 8"]:
        outcomes.add(Outcome(q, "mathy", 0.0, ("algebra",)))
        outcomes.add(Outcome(q, "wordy", 1.0, ("algebra",)))
    skills = SkillStrategy()
    skills.fit(experts, FitContext(encoder, outcomes))
    query = encoder.encode(["solve the equation 5x - 1 = 9"])[0]
    assert skills.tag(query)[0] == "algebra"
    assert max(skills.score(query), key=skills.score(query).get) == "wordy"
    fresh = SkillStrategy()
    fresh.fit(experts, FitContext(encoder))  # no outcomes: declared skills decide
    assert max(fresh.score(query), key=fresh.score(query).get) == "mathy"
    for _ in range(12):  # online feedback flips it back without a refit
        skills.observe(query, "mathy", 1.0)
        skills.observe(query, "wordy", 0.0)
    assert max(skills.score(query), key=skills.score(query).get) == "mathy"


def test_cost_threshold_is_a_quantile_and_choice_follows_cost_order() -> None:
    advantage = np.linspace(0.0, 1.0, 101)
    tau = calibrate_threshold(advantage, 0.3)
    assert (advantage >= tau).mean() == pytest.approx(0.3, abs=0.011)
    assert choose(np.array([0.6, 0.9]), tau=0.5) == 0
    assert choose(np.array([0.6, 0.9]), tau=0.2) == 1
    assert choose(np.array([0.5, 0.85, 0.9]), tau=0.1) == 1  # N experts: the middle one is good enough


def test_cost_strategy_sends_hard_queries_to_the_expensive_expert(encoder: Encoder) -> None:
    outcomes = OutcomeLog()
    hard = ["prove the integral of x^2 is x^3/3", "derive the eigenvalues of this matrix", "solve this PDE"]
    easy = ["hello, how are you today", "tell me a joke", "what's a nice greeting"]
    for q in hard:
        outcomes.extend([Outcome(q, "small", 0.0), Outcome(q, "large", 1.0)])
    for q in easy:
        outcomes.extend([Outcome(q, "small", 1.0), Outcome(q, "large", 1.0)])
    cost = CostStrategy()
    context = FitContext(encoder, outcomes, quality=QualityParams(neighbours=3))
    cost.fit([make_expert("small", [], cost=0.1), make_expert("large", [], cost=3.0)], context)
    assert cost.model is not None and cost.model.neighbours == 3
    assert cost.order == ["small", "large"]
    pick = lambda text, share: max(s := cost.score_with(encoder.encode([text])[0], share), key=s.get)  # noqa: E731
    assert pick("compute the eigenvalues of a 3x3 matrix", 0.5) == "large"
    assert pick("hi there, how is it going", 0.5) == "small"
    assert pick("hi there, how is it going", 1.0) == "large"  # share 1: everything goes to the expensive one


def test_a_large_outcome_log_calibrates_the_knob_on_a_fixed_sample(
    encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cost_module, "CALIBRATION_SAMPLE", 4)
    outcomes = OutcomeLog()
    for i, q in enumerate(["solve this PDE", "derive eigenvalues", "hello there", "tell a joke", "plan a trip", "x"]):
        outcomes.extend([Outcome(q, "small", float(i % 2)), Outcome(q, "large", 1.0)])
    experts = [make_expert("small", [], cost=0.1), make_expert("large", [], cost=3.0)]
    fits = []
    for _ in range(2):
        cost = CostStrategy()
        cost.fit(experts, FitContext(encoder, outcomes))
        fits.append(cost._calibration)
    assert len(fits[0]) == 4  # of 6 queries
    assert np.array_equal(fits[0], fits[1])  # the same sample on every refit: the knob does not wander
    assert cost.tau(0.5) == float(np.quantile(fits[0], 0.5))


def test_quality_settings_reach_the_cost_strategy(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOE_ROUTER_QUALITY_NEIGHBOURS", "7")
    monkeypatch.setenv("MOE_ROUTER_QUALITY_SKILL_FLOOR", "0")  # zero is a value, not "unset"
    params = quality_params(Settings())
    assert params == QualityParams(neighbours=7, shrink=QualityParams().shrink, skill_floor=0.0)
    outcomes = OutcomeLog([Outcome("solve this PDE", "small", 0.0), Outcome("solve this PDE", "large", 1.0)])
    router = Router(encoder, outcomes=outcomes, quality=params)
    router.refresh([make_expert("small", ["hi"], cost=0.1), make_expert("large", ["integrals"], cost=3.0)], "v1")
    assert router.strategy("cost").model.params == params  # type: ignore[attr-defined]
    router.close()


def test_router_feedback_and_micro_batching(encoder: Encoder) -> None:
    router = Router(encoder)
    router.refresh([make_expert("cook", COOK), make_expert("bank", BANK), make_expert("travel", TRAVEL)], "v1")
    decision = router.route("where can I fly cheaply next week", strategy="knn-topp-0.99")
    assert decision.query_id and router.recall(decision.query_id) == "where can I fly cheaply next week"
    assert decision.experts[0].name == "travel"

    async def many() -> list[str]:
        texts = [f"flight number {i} to Lisbon" for i in range(24)]
        decisions = await asyncio.gather(*(router.aroute(t) for t in texts))
        return [d.experts[0].name for d in decisions]

    before = router.batcher.batches
    assert set(asyncio.run(many())) == {"travel"}
    assert router.batcher.batches - before < 24  # concurrent queries shared encoder calls
    router.close()


class CountingEncoder:
    """The session's encoder, counting the texts encoded in routing lanes."""

    def __init__(self, inner: Encoder) -> None:
        self.inner, self.dim, self.name, self.lanes_supported = inner, inner.dim, inner.name, inner.lanes_supported
        self.in_lane = 0

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self.inner.encode(texts, batch_size)

    def encode_in_lane(self, texts: list[str]) -> np.ndarray:
        self.in_lane += len(texts)
        return self.inner.encode_in_lane(texts)


@pytest.mark.parametrize("lanes", [1, 2])
def test_a_micro_batch_of_mixed_strategies_answers_each_query_as_if_alone(encoder: Encoder, lanes: int) -> None:
    experts = [
        make_expert("cook", COOK, skills=["cooking"], cost=0.1),
        make_expert("bank", BANK, skills=["finance"], cost=1.0),
        make_expert("travel", TRAVEL, skills=["travel"], cost=3.0),
    ]
    outcomes = OutcomeLog([Outcome(t, e.name, 1.0, skills=tuple(e.skills)) for e in experts for t in e.exemplars])
    lane_calls = CountingEncoder(encoder)
    router = Router(lane_calls, outcomes=outcomes, lanes=lanes)
    router.refresh(experts, "v1")
    requests = [
        (text, strategy)
        for text in ["a cheap flight to Oslo", "bake a lemon cake", "why was my card declined", "what is the time",
                     "transfer money to my savings", "a vegan lasagne", "is my train late", "open an account"]
        for strategy in ["knn", "head", "skills", "cost-0.2", "cost-0.9", "knn-topp-0.9"]
    ]  # fmt: skip
    alone = [router.route(text, strategy) for text, strategy in requests]

    async def together() -> list[RoutingDecision]:
        return await asyncio.gather(*(router.aroute(text, strategy) for text, strategy in requests))

    before = router.batcher.batches
    batched = asyncio.run(together())
    assert router.batcher.batches - before < len(requests)  # they did share batches
    assert (lane_calls.in_lane > 0) == (lanes > 1)  # with lanes, the big batches were encoded in them
    for one, mixed in zip(alone, batched, strict=True):
        assert mixed.strategy == one.strategy and mixed.expert_names == one.expert_names
        assert [c.score for c in mixed.candidates] == pytest.approx([c.score for c in one.candidates], abs=1e-5)
        assert mixed.skills == one.skills
    # A bad request is refused before it joins a batch, so it cannot fail its batch-mates.
    with pytest.raises(InvalidRequest, match=r"share must lie in \[0, 1\]"):
        router.route("bake a lemon cake", "cost-1.5")
    router.close()


def test_lanes_keep_routing_while_feedback_and_a_refit_change_the_strategies(encoder: Encoder) -> None:
    experts = [make_expert("cook", COOK, cost=0.1), make_expert("bank", BANK, cost=1.0)]
    router = Router(encoder, outcomes=OutcomeLog([Outcome(t, "cook", 1.0) for t in COOK]), lanes=2)
    router.refresh(experts, "v1")
    queries = [f"{text} number {i}" for i in range(12) for text in COOK + BANK]

    async def route_all() -> list[RoutingDecision]:
        return await asyncio.gather(*(router.aroute(q, strategy) for q in queries for strategy in ("knn", "cost-0.5")))

    def learn() -> None:
        for i in range(40):  # online feedback on the model thread while the lanes score
            router.observe(Outcome(f"{BANK[i % 4]} today {i}", "bank", 1.0))
        router.refresh([*experts, make_expert("travel", TRAVEL, cost=3.0)], "v2")  # the kNN index changes in place

    learner = threading.Thread(target=learn)
    learner.start()
    decisions = asyncio.run(route_all())
    learner.join()
    assert len(decisions) == 2 * len(queries) and all(d.experts for d in decisions)
    assert router.route("transfer money to savings", "knn").experts[0].name == "bank"
    assert router.route("find a hotel in Rome", "knn").experts[0].name == "travel"  # the refit landed
    router.close()
