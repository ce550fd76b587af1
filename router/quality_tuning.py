"""The quality model's k, pull towards the skill prior and skill-gate floor, chosen on the outcomes
themselves: leave-one-out, each query scored without its own outcomes, by the quality its routing curve
gains over always calling the cheap expert (RouteLLM's APGR before it divides by the experts' gap).

What suits one outcome log does not suit another (a few hundred outcomes want a smaller k than many
thousand), and the out-of-fold numbers in bench/routing_costq.py come from exactly this choice.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import fields

import numpy as np

from router.metrics import cost_quality_metrics, routing_curve
from router.quality import QualityModel, QualityParams
from router.skill_tree import prefixes

# Brackets what the folds of RouteLLM's dev outcomes choose: with shrink >= 4 and floor >= 0.1 (an earlier
# grid) every fold chose the smallest value of both. Keys are QualityParams' fields.
GRID: dict[str, tuple[float, ...]] = {
    "neighbours": (32, 64, 128, 256),
    "shrink": (0.25, 1.0, 4.0, 32.0),
    "skill_floor": (0.01, 0.03, 0.1, 0.3),
}


def tune(
    model: QualityModel, grid: dict[str, tuple[float, ...]] | None = None, progress: Callable[[str], None] | None = None
) -> QualityParams:
    """Sets `model` to the grid point with the best leave-one-out gain over its own queries and returns it.

    The model's first expert is taken as the cheap one and its last as the expensive one (models are
    built in cost order). Queries with outcomes for both count. The gain is taken per top-level skill
    (the knob is calibrated within one population: "mmlu", not "mmlu/anatomy") and summed weighted by
    size, so a 24-question skill cannot pick k for a 5,000-question one.

    Leave-one-out leans slightly towards the neighbours over the skill prior: taking a query's outcome
    out of its skill's record moves that prior against the query. With tens of queries per skill, as
    in the bench, the effect is small."""
    grid = grid or GRID
    keys = list(model.rows)
    rows = np.array([model.rows[key] for key in keys])
    counts, sums = model.counts[rows], model.sums[rows]
    both = np.flatnonzero((counts[:, 0] > 0) & (counts[:, -1] > 0))
    if not len(both):
        return model.params
    weak, strong = (sums[both, col] / counts[both, col] for col in (0, -1))
    members: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows[both]):
        members[prefixes(model.row_skill[row])[0] if model.row_skill[row] else ""].append(i)
    groups = [np.array(m) for m in members.values()]
    vectors = model.index.reconstruct_n(0, len(keys))[rows[both]]
    held_out = [keys[i] for i in both]
    names = [field.name for field in fields(QualityParams)]
    candidates = [QualityParams(*values) for values in itertools.product(*(grid[name] for name in names))]
    best_score, best = -np.inf, model.params
    for i, candidate in enumerate(candidates):
        if progress:
            progress(f"leave-one-out, setting {i + 1}/{len(candidates)}")
        model.params = candidate
        predicted = model.predict(vectors, exclude=held_out)
        wins = predicted[:, -1] - predicted[:, 0]
        score = sum(len(g) * _gain(wins[g], strong[g], weak[g]) for g in groups)
        if score > best_score:  # ties keep the earlier (smaller) setting
            best_score, best = score, candidate
    model.params = best
    return best


def _gain(wins: np.ndarray, strong: np.ndarray, weak: np.ndarray) -> float:
    """The area between the routing curve and the cheap expert's line: APGR times the experts' quality
    gap. A random ordering scores half the gap whatever the setting; unlike APGR, this stays finite and
    steady as the gap shrinks, and higher is better even where the expensive expert is the worse one."""
    curve = cost_quality_metrics(routing_curve(wins, strong, weak), strong.mean(), weak.mean())
    return float(curve["auc"] - weak.mean())
