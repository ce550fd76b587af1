"""Skill profiles (Symbolic-MoE): experts are scored by their competence on the query's skills.

A query's skills are the nearest skill keywords in embedding space. Each keyword's vector is the
mean of its own embedding and of the past queries tagged with it, so tagging sharpens as outcomes
arrive. An expert's profile is {skill: competence} learned from outcomes (+1 right / -1 wrong,
normalised per skill) plus a global strength (its overall success rate); a declared skill counts
as one right answer so a new expert is routable before any outcome.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from experts.schemas import ExpertOut
from router.strategies.base import FitContext, softmax, uniform


def skill_phrase(skill: str) -> str:
    return skill.replace("_", " ").replace("-", " ")


class SkillProfiles:
    """Counts per (expert, skill): wins minus losses, and totals; plus global wins and totals."""

    def __init__(self) -> None:
        self.net: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.seen: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.wins: dict[str, float] = defaultdict(float)
        self.total: dict[str, float] = defaultdict(float)

    def record(self, expert: str, skills: list[str], score: float) -> None:
        # score in [0, 1] maps to +1 (right) .. -1 (wrong); partial scores count partially.
        signed = 2.0 * score - 1.0
        for skill in skills:
            self.net[expert][skill] += signed
            self.seen[expert][skill] += 1.0
        self.wins[expert] += score
        self.total[expert] += 1.0

    def competence(self, expert: str, skill: str, prior: float = 1.0) -> float:
        return self.net[expert].get(skill, 0.0) / (self.seen[expert].get(skill, 0.0) + prior)

    def strength(self, expert: str, prior: float = 2.0) -> float:
        # Laplace-smoothed success rate: 0.5 for an expert with no history.
        return (self.wins[expert] + prior / 2) / (self.total[expert] + prior)


class SkillStrategy:
    name = "skills"

    def __init__(self, skills_per_query: int = 3, temperature: float = 0.1) -> None:
        self.skills_per_query = skills_per_query
        self.temperature = temperature
        self.expert_names: list[str] = []
        self.skill_names: list[str] = []
        self.skill_vectors = np.zeros((0, 1), dtype=np.float32)
        self._sums: dict[str, np.ndarray] = {}
        self.profiles = SkillProfiles()

    def fit(self, experts: list[ExpertOut], context: FitContext) -> None:
        self.expert_names = [e.name for e in experts]
        self.profiles = SkillProfiles()
        declared = {e.name: list(e.skills) for e in experts}
        outcomes = [o for o in context.outcomes if o.expert in declared]
        names = sorted({s for skills in declared.values() for s in skills} | {s for o in outcomes for s in o.skills})
        self._sums = {}
        if names:
            base = context.encoder.encode([skill_phrase(s) for s in names])
            self._sums = {n: base[i].astype(np.float64) for i, n in enumerate(names)}
        tagged = [o for o in outcomes if o.skills]
        skills_of_query = {o.query: o.skills for o in tagged}
        if skills_of_query:
            vectors = context.encoder.encode(list(skills_of_query))
            for vector, skills in zip(vectors, skills_of_query.values(), strict=True):
                for skill in skills:
                    self._sums[skill] = self._sums[skill] + vector
        self._refresh_vectors()
        for name, skills in declared.items():
            self.profiles.record(name, skills, 1.0)
        untagged = [o for o in outcomes if not o.skills]
        untagged_vectors = context.encoder.encode([o.query for o in untagged]) if untagged else []
        for outcome in tagged:
            self.profiles.record(outcome.expert, list(outcome.skills), outcome.score)
        for outcome, vector in zip(untagged, untagged_vectors, strict=True):
            self.profiles.record(outcome.expert, self.tag(vector), outcome.score)

    def _refresh_vectors(self) -> None:
        self.skill_names = sorted(self._sums)
        if not self.skill_names:
            self.skill_vectors = np.zeros((0, 1), dtype=np.float32)
            return
        matrix = np.stack([self._sums[n] for n in self.skill_names])
        self.skill_vectors = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)

    def tag(self, query: np.ndarray) -> list[str]:
        """The query's skills: the nearest skill keywords."""
        if not self.skill_names:
            return []
        sims = self.skill_vectors @ query
        top = np.argsort(-sims)[: self.skills_per_query]
        return [self.skill_names[i] for i in top]

    def raw_scores(self, query: np.ndarray) -> dict[str, float]:
        skills = self.tag(query)
        return {
            e: sum(self.profiles.competence(e, s) for s in skills) * self.profiles.strength(e)
            for e in self.expert_names
        }

    def score(self, query: np.ndarray) -> dict[str, float]:
        if not self.skill_names:
            return uniform(self.expert_names)
        return softmax(self.raw_scores(query), self.temperature)

    def score_many(self, queries: np.ndarray) -> list[dict[str, float]]:
        return [self.score(query) for query in queries]  # a few small matrix-vector products each

    def skills_of(self, query: np.ndarray) -> list[str]:
        return self.tag(query)

    def observe(self, query: np.ndarray, expert: str, score: float) -> None:
        if expert in self.expert_names:
            self.profiles.record(expert, self.tag(query), score)
