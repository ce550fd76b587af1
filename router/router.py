"""query -> RoutingDecision. Strategies score experts; the router picks and explains."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from core.errors import InvalidRequest, NoExpertAvailable
from experts.schemas import ExpertOut
from router.decision import ExpertScore, RoutingDecision
from router.encoder import Encoder
from router.strategies.base import RoutingStrategy
from router.strategies.knn import KnnStrategy

StrategyFactory = Callable[[], RoutingStrategy]
STRATEGIES: dict[str, StrategyFactory] = {"knn": KnnStrategy}
DEFAULT_STRATEGY = "knn"


class Router:
    """Holds one fitted instance per strategy; refits all when the registry fingerprint changes."""

    def __init__(self, encoder: Encoder, max_query_chars: int = 8000) -> None:
        self.encoder = encoder
        self.max_query_chars = max_query_chars
        self._strategies: dict[str, RoutingStrategy] = {}
        self._experts: list[ExpertOut] = []
        self._fingerprint: str | None = None
        self._lock = threading.Lock()

    def refresh(self, experts: list[ExpertOut], fingerprint: str) -> None:
        if fingerprint == self._fingerprint:
            return
        with self._lock:
            if fingerprint == self._fingerprint:
                return
            fitted: dict[str, RoutingStrategy] = {}
            for name, factory in STRATEGIES.items():
                strategy = factory()
                strategy.fit(experts, self.encoder)
                fitted[name] = strategy
            self._strategies, self._experts, self._fingerprint = fitted, experts, fingerprint

    def route(self, query: str, strategy: str | None = None, k: int = 1) -> RoutingDecision:
        name = strategy or DEFAULT_STRATEGY
        if name not in STRATEGIES:
            known = ", ".join(sorted(STRATEGIES))
            raise InvalidRequest(f"unknown routing strategy '{name}' (known: {known})", param="model")
        if k < 1:
            raise InvalidRequest("k must be at least 1", param="k")
        if not self._experts:
            raise NoExpertAvailable("no expert is enabled; add or enable one in the registry")
        started = time.perf_counter()
        truncated = len(query) > self.max_query_chars
        vector = self.encoder.encode([query[: self.max_query_chars]])[0]
        encoded = time.perf_counter()
        scores = self._strategies[name].score(vector)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        chosen = ranked[:k]
        total = sum(s for _, s in chosen) or 1.0
        done = time.perf_counter()
        return RoutingDecision(
            strategy=name,
            experts=[ExpertScore(name=n, score=s / total) for n, s in chosen],
            candidates=[ExpertScore(name=n, score=s) for n, s in ranked],
            confidence=ranked[0][1],
            aggregator="pass-through" if len(chosen) == 1 else "majority-vote",
            truncated=truncated,
            timings_ms={"encode": (encoded - started) * 1e3, "score": (done - encoded) * 1e3},
        )
