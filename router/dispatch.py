"""Multi-expert dispatch: top-k, top-p (dynamic k), an always-on shared expert and a null expert."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InvalidRequest


@dataclass(frozen=True)
class DispatchConfig:
    k: int = 1
    p: float | None = None  # top-p: add experts until their cumulative probability reaches p (k caps it)
    shared: str | None = None  # always consulted, on top of the routed ones
    null_threshold: float | None = None  # in-scope score below this -> out of scope
    fallback: str | None = None  # where out-of-scope queries go; None keeps the routed choice, flagged

    def validated(self) -> DispatchConfig:
        if self.k < 1:
            raise InvalidRequest("k must be at least 1", param="k")
        if self.p is not None and not 0.0 < self.p <= 1.0:
            raise InvalidRequest(f"p must lie in (0, 1], got {self.p}", param="p")
        return self


@dataclass(frozen=True)
class Dispatch:
    experts: list[tuple[str, float]]  # weights sum to 1
    out_of_scope: bool = False


def select(ranked: list[tuple[str, float]], config: DispatchConfig) -> list[tuple[str, float]]:
    """The routed experts from a best-first list of (name, probability)."""
    if config.p is None:
        return ranked[: config.k]
    # With p, k caps the count only when the caller raised it above its default of 1.
    limit = len(ranked) if config.k == 1 else config.k
    chosen, total = [], 0.0
    for name, prob in ranked[:limit]:
        chosen.append((name, prob))
        total += prob
        if total >= config.p - 1e-12:
            break
    return chosen


def dispatch(ranked: list[tuple[str, float]], in_scope: float, config: DispatchConfig) -> Dispatch:
    out_of_scope = config.null_threshold is not None and in_scope < config.null_threshold
    if out_of_scope and config.fallback:
        chosen = [(config.fallback, 1.0)]
    else:
        chosen = select(ranked, config)
    if config.shared and config.shared not in {n for n, _ in chosen}:
        # The shared expert gets the mean weight of the routed ones, so it neither drowns nor dominates them.
        mean = sum(w for _, w in chosen) / max(len(chosen), 1)
        chosen = [*chosen, (config.shared, mean or 1.0)]
    total = sum(w for _, w in chosen) or 1.0
    return Dispatch([(n, w / total) for n, w in chosen], out_of_scope)
