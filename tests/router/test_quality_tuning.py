"""router.quality_tuning: leave-one-out picks the k that the outcomes call for, in both directions."""

from __future__ import annotations

import numpy as np

from router.quality import QualityModel, QualityParams
from router.quality_tuning import tune


def _grid(*neighbours: int) -> dict[str, tuple[float, ...]]:
    return {"neighbours": neighbours, "shrink": (1.0,), "skill_floor": (0.1,)}


def _clustered_outcomes(seed: int, clusters: int, size: int, win_rates: tuple[float, float]) -> QualityModel:
    """Tight clusters of `size` queries; in each, the strong expert wins at one of the two rates."""
    rng = np.random.default_rng(seed)
    centres = np.repeat(rng.normal(size=(clusters, 16)), size, axis=0)
    vectors = centres + 0.02 * rng.normal(size=centres.shape)
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    rates = np.repeat(np.where(rng.random(clusters) < 0.6, *win_rates), size)
    wins = (rng.random(len(vectors)) < rates).astype(float)
    model = QualityModel(vectors.shape[1], ["weak", "strong"])
    n = len(vectors)
    keys = [f"q{i}" for i in range(n) for _ in (0, 1)]
    scores = [s for win in wins for s in (1.0 - win, win)]
    model.add_many(keys, np.repeat(vectors, 2, axis=0), ["weak", "strong"] * n, scores)
    return model


def test_clusters_that_decide_the_winner_want_few_neighbours() -> None:
    # Each cluster's winner is certain: the cluster-mates say it all, far queries only blur it.
    model = _clustered_outcomes(0, clusters=30, size=4, win_rates=(1.0, 0.0))
    assert tune(model, _grid(2, 64)) == QualityParams(2, 1.0, 0.1)
    assert model.neighbours == 2


def test_clusters_with_noisy_winners_want_every_cluster_mate() -> None:
    # The winner is random within a cluster (85% / 15%): two mates estimate its rate poorly, seven well.
    model = _clustered_outcomes(0, clusters=40, size=8, win_rates=(0.85, 0.15))
    assert tune(model, _grid(2, 8)) == QualityParams(8, 1.0, 0.1)
    assert model.neighbours == 8


def test_without_queries_scored_by_both_experts_nothing_changes() -> None:
    model = QualityModel(4, ["weak", "strong"], neighbours=7)
    model.add("q", np.full(4, 0.5, dtype=np.float32), "strong", 1.0)
    assert tune(model, _grid(2, 8)) == QualityParams(7)
    assert model.neighbours == 7
