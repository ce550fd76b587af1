"""Per-expert chance of a good answer, predicted from past outcomes of similar queries (kNN)."""

from __future__ import annotations

import faiss
import numpy as np


class QualityModel:
    """Outcome rows keyed by query; prediction = similarity-weighted mean of the neighbours' scores
    for that expert, shrunk towards the expert's overall mean (so sparse neighbourhoods stay sane)."""

    def __init__(self, dim: int, experts: list[str], neighbours: int = 64, shrink: float = 4.0) -> None:
        self.row_skill: list[str | None] = []
        self.skill_sums: dict[str, np.ndarray] = {}
        self.skill_counts: dict[str, np.ndarray] = {}
        self.dim = dim
        self.experts = list(experts)
        self.neighbours = neighbours
        self.shrink = shrink
        self.index = faiss.IndexFlatIP(dim)
        self.rows: dict[str, int] = {}
        self.sums = np.zeros((0, len(self.experts)), dtype=np.float64)
        self.counts = np.zeros((0, len(self.experts)), dtype=np.float64)

    def add(self, key: str, vector: np.ndarray | None, expert: str, score: float) -> None:
        """Record one outcome; `vector` is needed only the first time `key` is seen."""
        if expert not in self.experts:
            return
        row = self.rows.get(key)
        if row is None:
            if vector is None:
                raise ValueError("a new query needs its vector")
            row = self.rows[key] = len(self.rows)
            self.index.add(vector.reshape(1, -1).astype(np.float32))
            self.sums = np.vstack([self.sums, np.zeros((1, len(self.experts)))])
            self.counts = np.vstack([self.counts, np.zeros((1, len(self.experts)))])
        col = self.experts.index(expert)
        self.sums[row, col] += score
        self.counts[row, col] += 1
        if len(self.row_skill) < len(self.rows):
            self.row_skill.append(None)

    def add_many(
        self,
        keys: list[str],
        vectors: np.ndarray,
        experts: list[str],
        scores: list[float],
        skills: list[str | None] | None = None,
    ) -> None:
        first = {}
        for i, key in enumerate(keys):
            if key not in self.rows and key not in first:
                first[key] = i
        if first:
            start = len(self.rows)
            for j, key in enumerate(first):
                self.rows[key] = start + j
            self.index.add(np.ascontiguousarray(vectors[list(first.values())], dtype=np.float32))
            pad = np.zeros((len(first), len(self.experts)))
            self.sums, self.counts = np.vstack([self.sums, pad]), np.vstack([self.counts, pad])
            self.row_skill.extend(skills[i] if skills else None for i in first.values())
        cols = {e: c for c, e in enumerate(self.experts)}
        for i, (key, expert, score) in enumerate(zip(keys, experts, scores, strict=True)):
            if expert in cols:
                self.sums[self.rows[key], cols[expert]] += score
                self.counts[self.rows[key], cols[expert]] += 1
                if skills and skills[i]:
                    self._add_skill(skills[i], cols[expert], score)

    def _add_skill(self, skill: str, col: int, score: float) -> None:
        if skill not in self.skill_sums:
            self.skill_sums[skill] = np.zeros(len(self.experts))
            self.skill_counts[skill] = np.zeros(len(self.experts))
        self.skill_sums[skill][col] += score
        self.skill_counts[skill][col] += 1

    def __len__(self) -> int:
        return len(self.rows)

    def prior(self) -> np.ndarray:
        totals = self.counts.sum(0)
        return np.where(totals > 0, self.sums.sum(0) / np.maximum(totals, 1), 0.5)

    def predict(self, queries: np.ndarray, exclude: list[str] | None = None) -> np.ndarray:
        """[n, experts] predicted quality. `exclude[i]` drops query i's own row (leave-one-out scoring)."""
        prior = self.prior()
        if not len(self):
            return np.tile(prior, (len(queries), 1))
        k = min(self.neighbours + (1 if exclude else 0), len(self))
        sims, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        weights = np.clip(sims, 0.0, None) ** 2
        if exclude:
            own = np.array([self.rows.get(key, -2) if key else -2 for key in exclude])
            weights = np.where(ids == own[:, None], 0.0, weights)
        weights = np.where(ids >= 0, weights, 0.0)
        ids = np.maximum(ids, 0)
        # Per-row means first: a query with several outcomes for one expert counts once.
        means = np.divide(
            self.sums[ids], self.counts[ids], out=np.zeros_like(self.sums[ids]), where=self.counts[ids] > 0
        )
        has = (self.counts[ids] > 0).astype(np.float64)
        num = (weights[..., None] * means * has).sum(1)
        den = (weights[..., None] * has).sum(1)
        priors = np.stack(
            [self._skill_prior(row_ids, row_weights, prior) for row_ids, row_weights in zip(ids, weights, strict=True)]
        )
        return (num + self.shrink * priors) / (den + self.shrink)

    def _skill_prior(self, ids: np.ndarray, weights: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """Symbolic-MoE's profile as the prior: the experts' record on the skill most of the neighbours carry."""
        if not self.skill_sums:
            return prior
        votes: dict[str, float] = {}
        for i, w in zip(ids.tolist(), weights.tolist(), strict=True):
            skill = self.row_skill[i] if i < len(self.row_skill) else None
            if skill and w > 0:
                votes[skill] = votes.get(skill, 0.0) + w
        if not votes:
            return prior
        skill = max(votes, key=votes.get)  # type: ignore[arg-type]
        counts = self.skill_counts[skill]
        # Shrink the skill's record towards the global prior too: a rare skill has few outcomes.
        return (self.skill_sums[skill] + self.shrink * prior) / (counts + self.shrink)
