"""query -> RoutingDecision. Strategies score experts; dispatch picks; the router explains."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from core.compute import compute, on_compute, one_thread_blocks, one_torch_thread
from core.db import session_scope
from core.errors import InvalidRequest, NoExpertAvailable, NotFound
from core.settings import Settings
from experts.schemas import ExpertOut
from router.batching import MicroBatcher
from router.decision import ExpertScore, RoutingDecision
from router.dispatch import DispatchConfig, dispatch
from router.encoder import ENCODE_CHUNK, CachingEncoder, TextEncoder
from router.fitted import FittedRouter
from router.outcomes import Outcome, OutcomeLog
from router.quality import QualityParams
from router.spec import RouteSpec, parse_spec
from router.strategies.base import FitContext, LearnsOnline, RoutingStrategy
from router.strategies.cost import CostStrategy, check_share
from router.strategies.head import HeadStrategy
from router.strategies.knn import KnnStrategy
from router.strategies.skills import SkillStrategy

StrategyFactory = Callable[[], RoutingStrategy]
STRATEGIES: dict[str, StrategyFactory] = {
    "knn": KnnStrategy,
    "head": HeadStrategy,
    "skills": SkillStrategy,
    "cost": CostStrategy,
}
DEFAULT_STRATEGY = "knn"
# Most requests one lane takes. Below half of 64 callers on purpose: the rest wait in the queue, so a
# lane that finishes takes them at once instead of idling while the event loop turns its answers
# around (~6.5 ms per batch of 32). 64 wrk clients, 2 lanes, 3 interleaved runs: 617-646 requests/s
# with 24, 589-638 with 32.
LANE_BATCH = 24

log = logging.getLogger(__name__)


def parse_route_model(name: str) -> RouteSpec:
    return parse_spec(name, set(STRATEGIES))


@dataclass(frozen=True)
class _Request:
    """One checked routing request, waiting for its batch."""

    query: str
    text: str  # what is encoded: the query cut to the routing length limit
    truncated: bool
    strategy: str
    spec: RouteSpec
    config: DispatchConfig
    started: float


def _unwrap(result: RoutingDecision | Exception) -> RoutingDecision:
    if isinstance(result, Exception):
        raise result
    return result


class Router:
    """Holds one fitted instance per strategy; refits all when the registry fingerprint changes."""

    def __init__(
        self,
        encoder: TextEncoder,
        max_query_chars: int = 8000,
        *,
        state_dir: Path | None = None,
        outcomes: OutcomeLog | None = None,
        default_strategy: str = DEFAULT_STRATEGY,
        dispatch_config: DispatchConfig | None = None,
        remembered_queries: int = 10_000,
        fitted: FittedRouter | None = None,
        lanes: int = 1,
        quality: QualityParams | None = None,
    ) -> None:
        if default_strategy not in STRATEGIES:
            raise InvalidRequest(f"unknown default routing strategy '{default_strategy}'", param="router_strategy")
        self.encoder = CachingEncoder(encoder)
        self.quality = quality or QualityParams()
        self.lanes = lanes if self.encoder.lanes_supported else 1
        self.batcher: MicroBatcher[_Request, RoutingDecision] = (
            MicroBatcher(
                self._route_in_lane, max_batch=LANE_BATCH, name="moe-router-lane", workers=self.lanes,
                on_worker_start=_start_lane,
            )
            if self.lanes > 1
            else MicroBatcher(self._route_batch, name="moe-router")
        )  # fmt: skip
        self.max_query_chars = max_query_chars
        self.state_dir = state_dir
        self.outcomes = outcomes if outcomes is not None else OutcomeLog()
        self.default_strategy = default_strategy
        self.dispatch_config = dispatch_config or DispatchConfig()
        self.fitted = fitted  # build_router loads it, with the encoder it was fitted in
        self._strategies: dict[str, RoutingStrategy] = {}
        self._experts: list[ExpertOut] = []
        self._fingerprint: str | None = None
        self._lock = threading.Lock()  # refits; held while the model thread fits, so never taken there
        # Scoring reads the strategies from lanes too; fitting and online learning change them (the kNN
        # index in place) on the model thread. Held for a batch's scoring (~1 ms), not its encoding.
        self._scoring = threading.Lock()
        self._recent_lock = threading.Lock()  # the remembered queries; taken on the model thread
        self._recent: OrderedDict[str, str] = OrderedDict()
        self._remembered = remembered_queries

    # ---- fitting -------------------------------------------------------------------------------
    def refresh(self, experts: list[ExpertOut], fingerprint: str, *, force: bool = False) -> None:
        if fingerprint == self._fingerprint and not force:
            return
        with self._lock:
            if fingerprint == self._fingerprint and not force:
                return
            fitted = compute(self._fit_all, experts)  # heads train with torch: on the model thread
            self._strategies, self._experts, self._fingerprint = fitted, experts, fingerprint

    def _fit_all(self, experts: list[ExpertOut]) -> dict[str, RoutingStrategy]:
        context = FitContext(self.encoder, self.outcomes, self.state_dir, self.quality)
        fitted: dict[str, RoutingStrategy] = {}
        with self._scoring:
            for name, factory in STRATEGIES.items():
                strategy = self._strategies.get(name) or factory()  # reuse: kNN updates incrementally
                if isinstance(strategy, HeadStrategy) and self.fitted is not None:
                    strategy.pretrained = self.fitted.head
                strategy.fit(experts, context)
                fitted[name] = strategy
        return fitted

    @property
    def fingerprint(self) -> str | None:
        """The registry state the strategies were last fitted on."""
        return self._fingerprint

    @property
    def experts(self) -> list[ExpertOut]:
        return self._experts

    def strategy(self, name: str) -> RoutingStrategy:
        return self._strategies[name]

    # ---- routing -------------------------------------------------------------------------------
    def _check(self, spec: RouteSpec, k: int, p: float | None) -> tuple[str, DispatchConfig]:
        name = spec.strategy or self.default_strategy
        if name not in STRATEGIES:
            known = ", ".join(sorted(STRATEGIES))
            raise InvalidRequest(f"unknown routing strategy '{name}' (known: {known})", param="model")
        config = DispatchConfig(
            k=spec.k if spec.k is not None else k,
            p=spec.p if spec.p is not None else p,
            shared=self.dispatch_config.shared,
            null_threshold=self._null_threshold(),
            fallback=self.dispatch_config.fallback,
        ).validated()
        if spec.share is not None:
            check_share(spec.share)  # here, so a bad share fails its own request and never its batch-mates
        if not self._experts:
            raise NoExpertAvailable("no expert is enabled; add or enable one in the registry")
        return name, config

    def _null_threshold(self) -> float | None:
        if self.dispatch_config.null_threshold is not None:
            return self.dispatch_config.null_threshold
        return self.fitted.null_threshold if self.fitted else None

    def _spec(self, strategy: str | None) -> RouteSpec:
        if strategy is None:
            return RouteSpec()
        try:
            return parse_route_model(strategy)
        except NotFound as exc:
            raise InvalidRequest(f"unknown routing strategy '{strategy}': {exc.message}", param="model") from None

    def route(self, query: str, strategy: str | None = None, k: int = 1, p: float | None = None) -> RoutingDecision:
        return _unwrap(self._route_batch([self._request(query, strategy, k, p)])[0])

    async def aroute(
        self, query: str, strategy: str | None = None, k: int = 1, p: float | None = None
    ) -> RoutingDecision:
        """Like `route`, but concurrent callers share one encoder call and one scoring pass (micro-batched)."""
        return await self.batcher.submit(self._request(query, strategy, k, p))

    def _request(self, query: str, strategy: str | None, k: int, p: float | None) -> _Request:
        """Everything about a request is checked here, before it joins a batch: a bad one fails alone."""
        spec = self._spec(strategy)
        name, config = self._check(spec, k, p)
        text = query[: self.max_query_chars]
        return _Request(query, text, len(query) > self.max_query_chars, name, spec, config, time.perf_counter())

    @on_compute
    def _route_batch(self, requests: list[_Request]) -> list[RoutingDecision | Exception]:
        """Encode and score a batch on the model thread (the heads, faiss and the tagger use OpenMP too)."""
        return self._score_batch(requests, self.encoder.encode_uncached([r.text for r in requests]))

    def _route_in_lane(self, requests: list[_Request]) -> list[RoutingDecision | Exception]:
        """A routing lane's batch. Under load each lane encodes and scores its own batch at one torch
        thread, so while one lane's answers go out the other lanes keep encoding; at idle a small batch
        goes to the model thread, where torch uses every core (one text: 3 ms instead of 5.5).

        With 64 HTTP clients on this project's 2-core machine, two lanes served 616-669 requests/s where
        one batch at a time on the model thread (MOE_ROUTER_LANES=1) served 577, in the same conditions
        (bench/routing_latency.py; 686-723 with the later gc and import-order fixes)."""
        if len(requests) < ENCODE_CHUNK and one_thread_blocks() == 0:
            return self._route_batch(requests)
        with one_torch_thread():
            return self._score_batch(requests, self.encoder.encode_in_lane([r.text for r in requests]))

    def _score_batch(self, requests: list[_Request], vectors: np.ndarray) -> list[RoutingDecision | Exception]:
        """Each request's scores come from its own row only, so its answer never depends on its batch-mates;
        requests are scored in groups of the same strategy, and a failing group fails only its own."""
        encoded = time.perf_counter()
        groups: dict[tuple[str, float | None], list[int]] = defaultdict(list)
        for i, request in enumerate(requests):
            groups[(request.strategy, request.spec.share)].append(i)
        scores: list[dict[str, float] | Exception] = [{} for _ in requests]
        with self._scoring:
            strategies = self._strategies  # one fit for the whole batch, even if a refit lands meanwhile
            for (name, share), rows in groups.items():
                try:
                    scored = self._score(strategies[name], vectors[rows], share)
                except Exception as exc:  # noqa: BLE001  (returned to the group's callers, raised there)
                    scored = [exc] * len(rows)
                for row, result in zip(rows, scored, strict=True):
                    scores[row] = result
            in_scope = self._in_scope(vectors, scores)
            skills = self._skills(strategies.get("skills"), vectors)
        scored_ms = (time.perf_counter() - encoded) * 1e3
        return [
            result if isinstance(result, Exception)
            else self._decision(r, result, in_scope[i], skills[i],
                                {"encode": (encoded - r.started) * 1e3, "score": scored_ms}, len(requests))
            for i, (r, result) in enumerate(zip(requests, scores, strict=True))
        ]  # fmt: skip

    @staticmethod
    def _score(strategy: RoutingStrategy, vectors: np.ndarray, share: float | None) -> list[dict[str, float]]:
        if share is not None and isinstance(strategy, CostStrategy):
            return strategy.score_many(vectors, share)
        return strategy.score_many(vectors)

    def _in_scope(self, vectors: np.ndarray, scores: list[dict[str, float] | Exception]) -> list[float]:
        """What the null-expert threshold compares to: the fitted scope score, else the top routing score."""
        if self.fitted is not None and self.fitted.head is not None:
            return [float(s) for s in self.fitted.in_scope(vectors)]
        return [max(s.values(), default=0.0) if isinstance(s, dict) else 0.0 for s in scores]

    @staticmethod
    def _skills(skills: RoutingStrategy | None, vectors: np.ndarray) -> list[list[str]]:
        return [skills.skills_of(v) for v in vectors] if isinstance(skills, SkillStrategy) else [[] for _ in vectors]

    def _decision(
        self,
        request: _Request,
        scores: dict[str, float],
        in_scope: float,
        skills: list[str],
        timings: dict[str, float],
        batch_size: int,
    ) -> RoutingDecision:
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        chosen = dispatch(ranked, in_scope, request.config)
        return RoutingDecision(
            strategy=request.strategy,
            experts=[ExpertScore(name=n, score=s) for n, s in chosen.experts],
            candidates=[ExpertScore(name=n, score=s) for n, s in ranked],
            skills=skills,
            confidence=ranked[0][1] if ranked else 0.0,
            aggregator="pass-through" if len(chosen.experts) == 1 else "majority-vote",
            truncated=request.truncated,
            timings_ms=timings,
            batch_size=batch_size,
            query_id=self._remember(request.query),
            out_of_scope=chosen.out_of_scope,
            in_scope_score=in_scope,
        )

    # ---- feedback ------------------------------------------------------------------------------
    def _remember(self, query: str) -> str:
        query_id = f"rq-{uuid.uuid4().hex}"
        with self._recent_lock:
            self._recent[query_id] = query
            while len(self._recent) > self._remembered:
                self._recent.popitem(last=False)
        return query_id

    def recall(self, query_id: str) -> str | None:
        return self._recent.get(query_id)

    @on_compute
    def observe(self, outcome: Outcome) -> None:
        """Learn from one new outcome now: profiles and quality predictions update without a refit."""
        self.outcomes.add(outcome)
        vector = self.encoder.encode([outcome.query[: self.max_query_chars]])[0]
        with self._scoring:
            for strategy in self._strategies.values():
                if isinstance(strategy, CostStrategy):
                    strategy.observe(vector, outcome.expert, outcome.score, key=outcome.query_id or outcome.query)
                elif isinstance(strategy, LearnsOnline):
                    strategy.observe(vector, outcome.expert, outcome.score)

    def close(self) -> None:
        self.batcher.close()


def _start_lane() -> None:
    """A lane's faiss searches run on the lane's thread alone (OpenMP keeps its setting per thread)."""
    import faiss

    faiss.omp_set_num_threads(1)


def build_router(settings: Settings, sessions: sessionmaker[Session]) -> Router:
    """The app's router: state under the data dir, outcomes loaded from the DB, dispatch from settings.

    After `moe router fit --finetune` the router runs in the fine-tuned encoder's space: every strategy
    (kNN index, skills, cost-quality) is fitted with that encoder, as the head and the scope scorer were."""
    from router.fitting import encoder_for
    from router.outcome_store import OutcomeStore

    state_dir = settings.data_dir / "router"
    fitted = FittedRouter.load(state_dir)
    try:
        encoder = encoder_for(fitted or FittedRouter())
    except InvalidRequest as exc:  # its encoder folder was deleted: the head would read the wrong space
        log.warning("ignoring the fitted router: %s", exc.message)
        fitted, encoder = None, encoder_for(FittedRouter())
    with session_scope(sessions) as session:
        outcomes = OutcomeStore(session).load(settings.router_max_outcomes)
    config = DispatchConfig(
        shared=settings.router_shared_expert,
        fallback=settings.router_fallback_expert,
        null_threshold=settings.router_null_threshold,
    )
    return Router(
        encoder,
        settings.max_query_chars,
        state_dir=state_dir,
        outcomes=outcomes,
        default_strategy=settings.router_strategy,
        dispatch_config=config,
        fitted=fitted,
        lanes=settings.router_lanes or os.cpu_count() or 1,
        quality=quality_params(settings),
    )


def quality_params(settings: Settings) -> QualityParams:
    """The MOE_ROUTER_QUALITY_* settings that are set, over the defaults."""
    overrides = {
        "neighbours": settings.router_quality_neighbours,
        "shrink": settings.router_quality_shrink,
        "skill_floor": settings.router_quality_skill_floor,
    }
    return QualityParams(**{name: value for name, value in overrides.items() if value is not None})
