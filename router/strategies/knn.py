"""Exemplar kNN: a similarity-weighted vote of the nearest exemplars."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from experts.schemas import ExpertOut
from router.encoder import Encoder
from router.index import ExemplarIndex


class KnnStrategy:
    name = "knn"

    def __init__(self, neighbours: int = 10, temperature: float = 0.05) -> None:
        self.neighbours = neighbours
        self.temperature = temperature
        self.index: ExemplarIndex | None = None
        self.expert_names: list[str] = []

    def fit(self, experts: list[ExpertOut], encoder: Encoder) -> None:
        self.index = ExemplarIndex.build(experts, encoder)
        self.expert_names = [e.name for e in experts]

    def score(self, query: np.ndarray) -> dict[str, float]:
        if self.index is None or not len(self.index):
            # No exemplars anywhere: every expert is equally likely.
            return {name: 1.0 / len(self.expert_names) for name in self.expert_names} if self.expert_names else {}
        votes: dict[str, float] = defaultdict(float)
        hits = self.index.search(query, self.neighbours)
        top = max(s for _, s in hits)
        for label, sim in hits:
            # Softmax weights: the nearest exemplars dominate, distant ones barely count.
            votes[label] += float(np.exp((sim - top) / self.temperature))
        total = sum(votes.values())
        return {name: votes.get(name, 0.0) / total for name in self.expert_names}
