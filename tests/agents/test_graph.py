"""The workflow graph on the real local experts: trace, routing parameters, bounded loops, self-consistency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from agents.dispatch import apply_routing, overrides_dispatch
from agents.graph import QueryGraph
from agents.runtime import Runtime
from agents.workflow_spec import RoutingSpec, parse_workflow
from core.errors import InvalidRequest, Unprocessable
from experts.generation import GenerationRequest
from router.decision import ExpertScore, RoutingDecision


@pytest.fixture(scope="module")
def graph(runtime: Runtime) -> QueryGraph:
    return QueryGraph(runtime)


def ask(text: str, max_tokens: int = 8) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], max_tokens=max_tokens)


def node_names(state: Any) -> list[str]:
    return [n["node"] for n in state["nodes"]]


def test_default_graph_records_inputs_outputs_and_timings(graph: QueryGraph, in_app: Callable[..., Any]) -> None:
    state = in_app(graph.run, ask("What is 2+2?"))
    assert node_names(state) == ["route", "call_experts", "aggregate"]
    route, call, aggregate = state["nodes"]
    assert route["inputs"]["query"] == "What is 2+2?" and route["outputs"]["experts"][0]["name"] == "math-lora"
    assert call["outputs"]["answers"][0]["text"] == state["answers"][0].text
    assert aggregate["inputs"]["aggregator"] == "pass-through" and aggregate["outputs"]["text"] == state["result"].text
    assert all(n["ms"] >= 0 for n in state["nodes"]) and call["ms"] >= route["ms"]


def test_decision_parameters_top_p_threshold_shared_expert() -> None:
    ranked = [ExpertScore(name="a", score=0.6), ExpertScore(name="b", score=0.3), ExpertScore(name="c", score=0.1)]

    def decide(**routing: Any) -> RoutingDecision:
        decision = RoutingDecision(strategy="knn", experts=ranked[:1], candidates=ranked, confidence=0.6)
        return apply_routing(decision, RoutingSpec(**routing))

    assert [e.name for e in decide(k=3).experts] == ["a", "b", "c"]
    assert [e.name for e in decide(k=3, p=0.85).experts] == ["a", "b"]
    assert [e.name for e in decide(k=3, p=0.5).experts] == ["a"]
    low = decide(threshold=0.7, fallback="c")
    assert [e.name for e in low.experts] == ["c"] and low.out_of_scope
    routed_out = RoutingDecision(strategy="knn", experts=ranked[:1], candidates=ranked, out_of_scope=True)
    assert [e.name for e in apply_routing(routed_out, RoutingSpec(fallback="b")).experts] == ["b"]
    assert not overrides_dispatch(RoutingSpec(k=2, p=0.5)) and overrides_dispatch(RoutingSpec(shared_expert="c"))
    shared = decide(k=1, shared_expert="c")
    assert [e.name for e in shared.experts] == ["a", "c"] and shared.aggregator == "majority-vote"
    assert sum(e.score for e in shared.experts) == pytest.approx(1.0)


def test_routed_workflow_with_top_p_and_a_shared_expert(graph: QueryGraph, in_app: Callable[..., Any]) -> None:
    spec = parse_workflow("name: routed\nrouting: {k: 2, p: 0.5, shared_expert: smollm2}\n")
    state = in_app(graph.run, ask("What is 15% of 80?"), workflow=spec)
    names = [e.name for e in state["decision"].experts]
    assert names == ["math-lora", "smollm2"]  # top-p keeps the confident math expert; the shared one joins
    assert sorted(a.expert for a in state["answers"]) == sorted(names)
    assert state["nodes"][0]["inputs"]["workflow"] == "routed" and state["decision"].aggregator == "majority-vote"


def test_fixed_experts_answer_in_parallel_and_vote(graph: QueryGraph, in_app: Callable[..., Any]) -> None:
    spec = parse_workflow("name: pair\nrouting: {experts: [math-lora, smollm2]}\naggregator: {type: majority-vote}\n")
    state = in_app(graph.run, ask("What is 3+4? Reply with the number."), workflow=spec)
    assert state["decision"].strategy == "fixed"
    assert sorted(a.expert for a in state["answers"]) == ["math-lora", "smollm2"]
    assert state["nodes"][2]["inputs"]["aggregator"] == "majority-vote"


LOOP = (
    "name: {name}\nrouting: {{experts: [smollm2]}}\nsteps:\n"
    " - {{type: verify, id: check, expert: {checker}}}\n"
    " - {{type: refine, id: fix, expert: smollm2, goto: check, max_rounds: {rounds}}}\n"
)


@pytest.mark.parametrize(("name", "checker", "rounds"), [("loop2", "smollm2", 2), ("loop1", "knowledge-lora", 1)])
def test_verify_refine_loop_is_bounded(
    graph: QueryGraph, in_app: Callable[..., Any], name: str, checker: str, rounds: int
) -> None:
    # Both share one compiled graph (same layout); each run must use its own expert and bound.
    spec = parse_workflow(LOOP.format(name=name, checker=checker, rounds=rounds))
    state = in_app(graph.run, ask("Name a large animal."), workflow=spec)
    names = node_names(state)
    assert names[:4] == ["route", "call_experts", "aggregate", "verify.check"]
    refines = names.count("refine.fix")
    assert refines <= rounds and names.count("verify.check") == min(refines + 1, rounds)
    assert state["nodes"][3]["inputs"]["expert"] == checker
    for record in state["nodes"][3:]:
        assert "inputs" in record and "outputs" in record
    if refines:  # the refined text is the answer, and the checker's and refiner's calls count
        assert state["result"].detail["refined_by"] == "smollm2"
        assert len(state["calls"]) == names.count("verify.check") + refines


def test_self_consistency_samples_with_distinct_seeds_then_votes(graph: QueryGraph, in_app: Callable[..., Any]) -> None:
    spec = parse_workflow("name: sc\nself_consistency: {samples: 3, temperature: 1.0, expert: math-lora, seed: 7}\n")
    state = in_app(graph.run, ask("What is 9 times 8?", max_tokens=10), workflow=spec)
    assert [a.expert for a in state["answers"]] == ["math-lora"] * 3
    assert len({a.text for a in state["answers"]}) > 1  # distinct seeds, distinct samples
    aggregate = state["nodes"][2]
    assert aggregate["inputs"]["aggregator"] == "majority-vote" and state["decision"].aggregator == "majority-vote"


def test_k_larger_than_the_enabled_experts_is_a_400(graph: QueryGraph, in_app: Callable[..., Any]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        in_app(graph.run, ask("hi"), k=9)
    assert caught.value.param == "k"


def test_a_workflow_naming_a_missing_expert_is_refused_at_run_time(
    graph: QueryGraph, in_app: Callable[..., Any]
) -> None:
    spec = parse_workflow("name: ghost\naggregator: {type: best-of, judge: retired-expert}\n")
    with pytest.raises(Unprocessable) as caught:
        in_app(graph.run, ask("hi"), workflow=spec)
    assert caught.value.param == "aggregator.judge"
