"""The one Protocol every routing strategy implements."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from experts.schemas import ExpertOut
from router.encoder import Encoder


class RoutingStrategy(Protocol):
    name: str

    def fit(self, experts: list[ExpertOut], encoder: Encoder) -> None:
        """(Re)build from the enabled experts; called whenever the registry changes."""

    def score(self, query: np.ndarray) -> dict[str, float]:
        """Probability per expert name for one unit-norm query embedding; sums to 1."""
