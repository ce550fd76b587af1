"""Per-expert chance of a good answer, predicted from past outcomes of similar queries (kNN).

The kNN estimate is shrunk towards a prior: the experts' record on the query's likely skills
(Symbolic-MoE's profiles), where "likely" comes from a skill tagger learnt from the skill tags that
past outcomes carry: a logistic head per level when the tags are paths ("mmlu/college_physics", see
`router/skill_tree.py`). Without skill tags the prior is the experts' overall record.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import faiss
import numpy as np

from router.skill_tree import SkillTagger, depth, node_at, prefixes

RETAG_GROWTH = 1.1  # refit the skill tagger once the tagged rows have grown by 10%
# What leave-one-out on RouteLLM's dev outcomes chooses, fold after fold (bench/routing_costq.py). Used on
# every fold, they beat the earlier (64, 4.0, 0.1) out of fold on MMLU (APGR 0.670 vs 0.657) and MT-Bench
# (0.590 vs 0.522), and tie on GSM8K (0.595).
NEIGHBOURS, SHRINK, SKILL_FLOOR = 128, 1.0, 0.1


@dataclass(frozen=True)
class QualityParams:
    """How the quality model predicts: k neighbours, the pull towards the skill prior, the skill gate's
    floor. Settable per deployment (MOE_ROUTER_QUALITY_*); `moe eval cost-quality --tune` suggests values."""

    neighbours: int = NEIGHBOURS
    shrink: float = SHRINK
    skill_floor: float = SKILL_FLOOR


class QualityModel:
    """Outcome rows keyed by query; prediction = similarity-weighted mean of the neighbours' scores for
    that expert (neighbours of skills the query unlikely needs count less), shrunk towards the skill
    prior, so sparse neighbourhoods stay sane. The tagger is refitted, lazily, as tagged rows grow."""

    def __init__(
        self,
        dim: int,
        experts: list[str],
        neighbours: int = NEIGHBOURS,
        shrink: float = SHRINK,
        skill_floor: float = SKILL_FLOOR,
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
        self._tagger: SkillTagger | None = None
        self._tagged = 0  # rows with a skill tag
        self._tagged_rows = 0  # ... when the tagger was fitted
        self._tagged_seen = 0  # ... at the last look (nothing new: no refit to consider)
        self._row_leaf = np.zeros(0, dtype=np.int64)  # each row's leaf column in the tagger, -1 if none

    @property
    def params(self) -> QualityParams:
        return QualityParams(self.neighbours, self.shrink, self.skill_floor)

    @params.setter
    def params(self, params: QualityParams) -> None:
        self.neighbours, self.shrink, self.skill_floor = params.neighbours, params.shrink, params.skill_floor

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
            new_skills = [skills[i] if skills else None for i in first.values()]
            self.row_skill.extend(new_skills)
            self._tagged += sum(1 for skill in new_skills if skill)
        cols = {e: c for c, e in enumerate(self.experts)}
        for i, (key, expert, score) in enumerate(zip(keys, experts, scores, strict=True)):
            if expert in cols:
                self.sums[self.rows[key], cols[expert]] += score
                self.counts[self.rows[key], cols[expert]] += 1
                if skills and skills[i]:
                    self._add_skill(skills[i], cols[expert], score)

    def _add_skill(self, skill: str, col: int, score: float) -> None:
        for node in prefixes(skill):  # a skill's record counts towards every skill above it
            if node not in self.skill_sums:
                self.skill_sums[node] = np.zeros(len(self.experts))
                self.skill_counts[node] = np.zeros(len(self.experts))
            self.skill_sums[node][col] += score
            self.skill_counts[node][col] += 1

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
        if tagger is None:
            priors = prior
        else:
            conditionals = tagger.conditionals(queries)
            # Neighbours of a skill the query is unlikely to need count less (they were near by wording),
            # level by level: another benchmark's rows first, then another subject's.
            cols = self._row_leaves(tagger)[ids]
            for chance in conditionals:
                fit = np.where(cols >= 0, np.take_along_axis(chance, np.maximum(cols, 0), 1), 1.0)
                weights = weights * (fit + self.skill_floor)
            chances = np.prod(conditionals, axis=0) if conditionals else np.ones((len(queries), len(tagger.leaves)))
            priors = np.einsum("nl,nle->ne", chances, self._leaf_profiles(tagger.leaves, prior, own))
        # Per-row means first: a query with several outcomes for one expert counts once.
        means = np.divide(
            self.sums[ids], self.counts[ids], out=np.zeros_like(self.sums[ids]), where=self.counts[ids] > 0
        )
        has = (self.counts[ids] > 0).astype(np.float64)
        num = (weights[..., None] * means * has).sum(1)
        den = (weights[..., None] * has).sum(1)
        return (num + self.shrink * priors) / (den + self.shrink)

    def _skill_tagger(self) -> SkillTagger | None:
        """Fitted lazily, refitted once the tagged rows have grown by RETAG_GROWTH. The routing hot path
        calls this per batch, so it looks at the rows only when there are new tagged ones."""
        if self._tagged == self._tagged_seen or (self._tagger and self._tagged <= self._tagged_rows * RETAG_GROWTH):
            return self._tagger
        self._tagged_seen = self._tagged
        tagged = [i for i, skill in enumerate(self.row_skill) if skill]
        if len({self.row_skill[i] for i in tagged}) < 2:
            return None
        vectors = self.index.reconstruct_n(0, len(self.rows))[tagged]
        self._tagger = SkillTagger(vectors, [str(self.row_skill[i]) for i in tagged])
        self._tagged_rows = len(tagged)
        self._row_leaf = np.zeros(0, dtype=np.int64)
        return self._tagger

    def _row_leaves(self, tagger: SkillTagger) -> np.ndarray:
        """Each row's leaf column in `tagger` (-1: untagged, or a skill new since the fit), extended as
        rows arrive rather than rebuilt per batch."""
        known = len(self._row_leaf)
        if known < len(self.row_skill):
            new = [tagger.leaf_index.get(skill, -1) if skill else -1 for skill in self.row_skill[known:]]
            self._row_leaf = np.concatenate([self._row_leaf, np.array(new, dtype=np.int64)])
        return self._row_leaf

    def _leaf_profiles(self, leaves: list[str], prior: np.ndarray, own: np.ndarray | None) -> np.ndarray:
        """Symbolic-MoE's profiles, [1 or n, leaves, experts]: the experts' record on each skill, shrunk
        towards the record of the skill above it and, at the top, their overall record (`prior`).
        `own[i]` (leave-one-out) is query i's own row: its outcomes are taken out of every record."""
        zero = np.zeros(len(self.experts))
        top = prior[None] if prior.ndim == 1 else prior  # [m, experts]
        members: dict[str, list[int]] = defaultdict(list)  # node -> the queries whose own row counts towards it
        for i, row in enumerate(own.tolist() if own is not None else []):
            path = self.row_skill[row] if row >= 0 else None
            for node in prefixes(path) if path else ():
                members[node].append(i)
        profiles: dict[str, np.ndarray] = {}  # node -> [m, experts]
        for level in range(max(depth(leaf) for leaf in leaves)):
            for node in sorted({node_at(leaf, level) for leaf in leaves}):
                if node in profiles:  # a shorter path: already final at an upper level
                    continue
                above = profiles[node_at(node, level - 1)] if level else top
                sums = np.repeat(self.skill_sums.get(node, zero)[None], len(top), 0)
                counts = np.repeat(self.skill_counts.get(node, zero)[None], len(top), 0)
                if node in members and own is not None:
                    mine = np.array(members[node])
                    sums[mine] -= self.sums[own[mine]]
                    counts[mine] -= self.counts[own[mine]]
                profiles[node] = (sums + self.shrink * above) / (counts + self.shrink)
        return np.stack([profiles[leaf] for leaf in leaves], axis=1)
