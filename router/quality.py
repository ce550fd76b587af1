"""Per-expert chance of a good answer, predicted from past outcomes of similar queries (kNN).

The kNN estimate is shrunk towards a prior: the experts' record on the query's likely skills
(Symbolic-MoE's profiles), where "likely" comes from a skill tagger (a logistic head) learnt from the
skill tags that past outcomes carry. Without skill tags the prior is the experts' overall record.
"""

from __future__ import annotations

import faiss
import numpy as np

from router.heads import LogisticHead

RETAG_GROWTH = 1.1  # refit the skill tagger once the tagged rows have grown by 10%


class QualityModel:
    """Outcome rows keyed by query; prediction = similarity-weighted mean of the neighbours' scores for
    that expert (neighbours of skills the query unlikely needs count less), shrunk towards the skill
    prior, so sparse neighbourhoods stay sane. The tagger is refitted, lazily, as tagged rows grow."""

    def __init__(
        self, dim: int, experts: list[str], neighbours: int = 64, shrink: float = 4.0, skill_floor: float = 0.1
    ) -> None:
        self.row_skill: list[str | None] = []
        self.skill_sums: dict[str, np.ndarray] = {}
        self.skill_counts: dict[str, np.ndarray] = {}
        self.dim = dim
        self.experts = list(experts)
        self.neighbours = neighbours
        self.shrink = shrink
        self.skill_floor = skill_floor  # a neighbour of an unlikely skill keeps at least this share of its weight
        self.index = faiss.IndexFlatIP(dim)
        self.rows: dict[str, int] = {}
        self.sums = np.zeros((0, len(self.experts)), dtype=np.float64)
        self.counts = np.zeros((0, len(self.experts)), dtype=np.float64)
        self._tagger: LogisticHead | None = None
        self._tagged_rows = 0

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

    def prior(self, own: np.ndarray | None = None) -> np.ndarray:
        """The experts' overall record: [experts], or per query [n, experts] without row `own[i]`."""
        sums, totals = self.sums.sum(0), self.counts.sum(0)
        if own is not None:
            known = (own >= 0)[:, None]
            sums = sums - np.where(known, self.sums[np.maximum(own, 0)], 0.0)
            totals = totals - np.where(known, self.counts[np.maximum(own, 0)], 0.0)
        return np.where(totals > 0, sums / np.maximum(totals, 1), 0.5)

    def predict(self, queries: np.ndarray, exclude: list[str] | None = None) -> np.ndarray:
        """[n, experts] predicted quality. `exclude[i]` drops query i's own row (leave-one-out scoring)."""
        if not len(self):
            return np.tile(self.prior(), (len(queries), 1))
        k = min(self.neighbours + (1 if exclude else 0), len(self))
        sims, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        weights = np.clip(sims, 0.0, None) ** 2
        own = None
        if exclude:
            own = np.array([self.rows.get(key, -2) if key else -2 for key in exclude])
            weights = np.where(ids == own[:, None], 0.0, weights)
        prior = self.prior(own)
        weights = np.where(ids >= 0, weights, 0.0)
        ids = np.maximum(ids, 0)
        tagger = self._skill_tagger()
        probs = tagger.predict_proba(np.asarray(queries, dtype=np.float32)) if tagger else None
        if tagger is not None and probs is not None:
            # Neighbours of a skill the query is unlikely to need count less (they were near by wording).
            column = {name: i for i, name in enumerate(tagger.labels)}
            cols = np.array([column.get(skill, -1) if skill else -1 for skill in self.row_skill])[ids]
            fit = np.where(cols >= 0, np.take_along_axis(probs, np.maximum(cols, 0), 1), 1.0)
            weights = weights * (fit + self.skill_floor)
        # Per-row means first: a query with several outcomes for one expert counts once.
        means = np.divide(
            self.sums[ids], self.counts[ids], out=np.zeros_like(self.sums[ids]), where=self.counts[ids] > 0
        )
        has = (self.counts[ids] > 0).astype(np.float64)
        num = (weights[..., None] * means * has).sum(1)
        den = (weights[..., None] * has).sum(1)
        priors = self._skill_priors(tagger, probs, prior, own)
        return (num + self.shrink * priors) / (den + self.shrink)

    def _skill_tagger(self) -> LogisticHead | None:
        tagged = [i for i, skill in enumerate(self.row_skill) if skill]
        if len({self.row_skill[i] for i in tagged}) < 2:
            return None
        if self._tagger is None or len(tagged) > self._tagged_rows * RETAG_GROWTH:
            vectors = self.index.reconstruct_n(0, len(self.rows))[tagged]
            self._tagger = LogisticHead().fit(vectors, [str(self.row_skill[i]) for i in tagged])
            self._tagged_rows = len(tagged)
        return self._tagger

    def _skill_priors(
        self, tagger: LogisticHead | None, probs: np.ndarray | None, prior: np.ndarray, own: np.ndarray | None
    ) -> np.ndarray:
        """Symbolic-MoE's profiles as the prior: the experts' record on each skill (shrunk towards their
        overall record), mixed by the tagger's probability that the query needs that skill.
        `own[i]` (leave-one-out) is query i's own row: its outcomes are taken out of its skill's record."""
        if tagger is None or probs is None:
            return prior  # broadcasts over the queries
        names = tagger.labels
        zero = np.zeros(len(self.experts))
        sums = np.stack([self.skill_sums.get(n, zero) for n in names])  # [skills, experts]
        counts = np.stack([self.skill_counts.get(n, zero) for n in names])
        if own is not None:  # take each query's own outcomes out of its own skill's record
            column = {name: i for i, name in enumerate(names)}
            sums, counts = np.repeat(sums[None], len(own), 0), np.repeat(counts[None], len(own), 0)
            for i, row in enumerate(own.tolist()):
                c = column.get(self.row_skill[row]) if row >= 0 else None  # type: ignore[arg-type]
                if c is not None:
                    sums[i, c] -= self.sums[row]
                    counts[i, c] -= self.counts[row]
            profiles = (sums + self.shrink * prior[:, None, :]) / (counts + self.shrink)
            return np.einsum("ns,nse->ne", probs, profiles)
        return probs @ ((sums + self.shrink * prior) / (counts + self.shrink))
