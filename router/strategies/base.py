"""The one Protocol every routing strategy implements, and what it is fitted from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from experts.schemas import ExpertOut
from router.encoder import TextEncoder
from router.outcomes import OutcomeLog
from router.quality import QualityParams


@dataclass
class FitContext:
    """Everything a strategy may learn from besides the registry: the encoder, past outcomes, a folder, and
    how outcomes become quality predictions."""

    encoder: TextEncoder
    outcomes: OutcomeLog = field(default_factory=OutcomeLog)
    state_dir: Path | None = None
    quality: QualityParams = field(default_factory=QualityParams)


class RoutingStrategy(Protocol):
    name: str

    def fit(self, experts: list[ExpertOut], context: FitContext) -> None:
        """(Re)build from the enabled experts; called whenever the registry changes."""

    def score(self, query: np.ndarray) -> dict[str, float]:
        """Probability per expert name for one unit-norm query embedding; sums to 1."""

    def score_many(self, queries: np.ndarray) -> list[dict[str, float]]:
        """`score` for each row of [n, dim]: a micro-batch of concurrent queries scored in one call."""


@runtime_checkable
class LearnsOnline(Protocol):
    """A strategy that improves from each new outcome without a refit (feedback)."""

    def observe(self, query: np.ndarray, expert: str, score: float) -> None: ...


def uniform(names: list[str]) -> dict[str, float]:
    return {n: 1.0 / len(names) for n in names} if names else {}


def softmax(scores: dict[str, float], temperature: float) -> dict[str, float]:
    if not scores:
        return {}
    names = list(scores)
    values = np.array([scores[n] for n in names], dtype=np.float64) / max(temperature, 1e-9)
    values = np.exp(values - values.max())
    values /= values.sum()
    return dict(zip(names, values.tolist(), strict=True))
