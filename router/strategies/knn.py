"""Exemplar kNN: a similarity-weighted vote of the nearest exemplars.

The index is updated incrementally when the registry changes (only new exemplars are encoded,
removed ones are dropped by id) and persisted under the state dir, so a restart encodes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from experts.schemas import ExpertOut
from router.index import ExemplarIndex, expert_texts
from router.strategies.base import FitContext, uniform

log = logging.getLogger(__name__)
_SEP = "\x1f"


def exemplar_key(expert: str, text: str) -> str:
    return f"{expert}{_SEP}{text}"


class KnnStrategy:
    name = "knn"

    def __init__(self, neighbours: int = 10, temperature: float = 0.05) -> None:
        self.neighbours = neighbours
        self.temperature = temperature
        self.index: ExemplarIndex | None = None
        self.expert_names: list[str] = []
        self.last_encoded = 0  # exemplars encoded by the last fit: 0 when nothing changed

    def fit(self, experts: list[ExpertOut], context: FitContext) -> None:
        # One index file per encoder: after `moe router fit --finetune` the index is rebuilt in the new space.
        tag = hashlib.sha1(context.encoder.name.encode()).hexdigest()[:12]
        path = context.state_dir / f"knn-{tag}.faiss" if context.state_dir else None
        if self.index is None:
            self.index = self._load(path, context.encoder.dim)
        wanted = {exemplar_key(e.name, t): (e.name, t) for e in experts for t in expert_texts(e)}
        have = {key: i for i, key in self.index.keys.items()}
        stale = [i for key, i in have.items() if key not in wanted]
        fresh = [key for key in wanted if key not in have]
        self.index.remove(stale)
        if fresh:
            vectors = context.encoder.encode([wanted[k][1] for k in fresh])
            self.index.add(vectors, [wanted[k][0] for k in fresh], fresh)
        self.last_encoded = len(fresh)
        self.expert_names = [e.name for e in experts]
        if path and (stale or fresh):
            self.index.save(path)

    @staticmethod
    def _load(path: Path | None, dim: int) -> ExemplarIndex:
        if path and path.is_file():
            try:
                index = ExemplarIndex.load(path)
                if index.dim == dim:
                    return index
            except (OSError, ValueError, KeyError, RuntimeError) as exc:  # a torn or foreign file: rebuild
                log.warning("ignoring unreadable kNN index %s: %s", path, exc)
        return ExemplarIndex(dim)

    def score(self, query: np.ndarray) -> dict[str, float]:
        return self.score_many(query.reshape(1, -1))[0]

    def score_many(self, queries: np.ndarray) -> list[dict[str, float]]:
        if self.index is None or not len(self.index):
            # No exemplars anywhere: every expert is equally likely.
            return [uniform(self.expert_names) for _ in queries]
        return [self.vote(hits) for hits in self.index.search_batch(queries, self.neighbours)]

    def vote(self, hits: list[tuple[str, float]]) -> dict[str, float]:
        votes: dict[str, float] = defaultdict(float)
        top = max(s for _, s in hits)
        for label, sim in hits:
            # Softmax weights: the nearest exemplars dominate, distant ones barely count.
            votes[label] += float(np.exp((sim - top) / self.temperature))
        total = sum(votes.values())
        return {name: votes.get(name, 0.0) / total for name in self.expert_names}
