"""Cost-quality: the cheapest expert whose predicted quality is close enough to the best.

Quality per expert comes from outcomes of similar past queries (`QualityModel`). The knob is a
tolerated quality gap tau, calibrated to a target share of calls to the most expensive expert the
way RouteLLM's `calibrate_threshold` does it: a quantile of the per-query "expensive advantage"
g(x) = best predicted quality - best predicted quality among the cheaper experts. With two experts
g is exactly the strong model's predicted win margin; with N it is the same rule, applied in cost order.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from core.errors import InvalidRequest
from experts.schemas import ExpertOut
from router.quality import QualityModel
from router.strategies.base import FitContext

# Queries whose leave-one-out advantage calibrates the knob. Every one is a search over the whole log, so
# scoring all of a 200,000-outcome log would take minutes at each refit; a quantile needs far fewer.
CALIBRATION_SAMPLE = 10_000


def expensive_advantage(quality: np.ndarray) -> np.ndarray:
    """g(x) per row of a [n, experts-in-cost-order] matrix."""
    if quality.shape[1] < 2:
        return np.zeros(len(quality))
    return quality.max(1) - quality[:, :-1].max(1)


def check_share(expensive_share: float) -> float:
    if not 0.0 <= expensive_share <= 1.0:
        raise InvalidRequest(f"the expensive-call share must lie in [0, 1], got {expensive_share}", param="model")
    return expensive_share


def calibrate_threshold(advantage: np.ndarray, expensive_share: float) -> float:
    """tau such that about `expensive_share` of the calibration queries go to the most expensive expert."""
    check_share(expensive_share)
    if not len(advantage):
        return 0.0
    if expensive_share <= 0.0:
        return float(np.inf)
    if expensive_share >= 1.0:
        return float(-np.inf)  # the extremes hold for unseen queries too, not only the calibration set
    return float(np.quantile(advantage, 1.0 - expensive_share))


def choose(quality: np.ndarray, tau: float) -> int:
    """Index (cost order) of the cheapest expert within tau of the best; the most expensive if none is."""
    best = float(quality.max())
    if len(quality) == 1 or float(expensive_advantage(quality.reshape(1, -1))[0]) >= tau:
        return len(quality) - 1
    return int(np.flatnonzero(quality[:-1] >= best - tau)[0])


class CostStrategy:
    name = "cost"

    def __init__(self, expensive_share: float = 0.5) -> None:
        self.expensive_share = expensive_share
        self.order: list[str] = []  # expert names, cheapest first
        self.model: QualityModel | None = None
        self._calibration: np.ndarray = np.zeros(0)
        self._taus: dict[float, float] = {}

    def fit(self, experts: list[ExpertOut], context: FitContext) -> None:
        self.order = [e.name for e in sorted(experts, key=lambda e: (e.cost_per_1k_tokens, e.name))]
        self.model = QualityModel(context.encoder.dim, self.order, **asdict(context.quality))
        outcomes = [o for o in context.outcomes if o.expert in self.order]
        if outcomes:
            keys = [o.query_id or o.query for o in outcomes]
            unique = list(dict.fromkeys(o.query for o in outcomes))
            vectors = context.encoder.encode(unique)
            by_query = dict(zip(unique, vectors, strict=True))
            stacked = np.stack([by_query[o.query] for o in outcomes])
            # An outcome's first skill tag teaches the skill tagger and that skill's record (the prior);
            # a path ("mmlu/college_physics") teaches a tagger per level and a record per node.
            skills = [o.skills[0] if o.skills else None for o in outcomes]
            self.model.add_many(keys, stacked, [o.expert for o in outcomes], [o.score for o in outcomes], skills)
        self._recalibrate()

    def _recalibrate(self) -> None:
        model = self.model
        self._taus = {}
        if model is None or not len(model):
            self._calibration = np.zeros(0)
            return
        keys = list(model.rows)
        rows = np.arange(len(keys))
        if len(rows) > CALIBRATION_SAMPLE:  # a fixed sample: the same rows on every refit of the same log
            rows = np.sort(np.random.default_rng(0).choice(len(rows), CALIBRATION_SAMPLE, replace=False))
        vectors = np.vstack([model.index.reconstruct(int(i)) for i in rows])
        self._calibration = expensive_advantage(model.predict(vectors, exclude=[keys[i] for i in rows]))

    def tau(self, share: float) -> float:
        if share not in self._taus:
            self._taus[share] = calibrate_threshold(self._calibration, share)
        return self._taus[share]

    def quality(self, query: np.ndarray) -> dict[str, float]:
        return dict(zip(self.order, self.quality_many(query.reshape(1, -1))[0].tolist(), strict=True))

    def quality_many(self, queries: np.ndarray) -> np.ndarray:
        """[n, experts in cost order]: each expert's predicted chance of a good answer."""
        if self.model is None:
            return np.full((len(queries), len(self.order)), 1.0 / max(len(self.order), 1))
        return self.model.predict(queries)

    def score(self, query: np.ndarray) -> dict[str, float]:
        return self.score_many(query.reshape(1, -1))[0]

    def score_with(self, query: np.ndarray, share: float) -> dict[str, float]:
        return self.score_many(query.reshape(1, -1), share)[0]

    def score_many(self, queries: np.ndarray, share: float | None = None) -> list[dict[str, float]]:
        """All weight on the chosen expert; `quality` says why. `share` overrides the configured one."""
        if not self.order:
            return [{} for _ in queries]
        tau = self.tau(self.expensive_share if share is None else share)
        chosen = [choose(row, tau) for row in self.quality_many(queries)]
        return [{name: 1.0 if i == pick else 0.0 for i, name in enumerate(self.order)} for pick in chosen]

    def observe(self, query: np.ndarray, expert: str, score: float, key: str | None = None) -> None:
        if self.model is not None:
            self.model.add(key or f"v:{hash(query.tobytes())}", query, expert, score)
