from __future__ import annotations

import numpy as np
import pytest

from router.metrics import classification_report, cost_quality_metrics, routing_curve


def test_routellm_metrics_on_a_hand_computed_case() -> None:
    wins = np.array([0.1, 0.2, 0.3, 0.4])
    strong, weak = np.ones(4), np.array([1.0, 1.0, 0.0, 0.0])
    points = routing_curve(wins, strong, weak, num_results=2)
    assert points == [(100.0, 1.0), (50.0, 1.0), (0.0, 0.5)]
    metrics = cost_quality_metrics(points, strong_quality=1.0, weak_quality=0.5)
    assert metrics["auc"] == pytest.approx(0.875)
    assert metrics["apgr"] == pytest.approx(0.75)
    assert metrics["cpt_50"] == pytest.approx(25.0)


def test_an_oracle_beats_random_and_reversed_routers() -> None:
    rng = np.random.default_rng(0)
    strong = (rng.random(2000) < 0.8).astype(float)
    weak = (rng.random(2000) < 0.6).astype(float)
    gain = strong - weak

    def apgr(wins: np.ndarray) -> float:
        return cost_quality_metrics(routing_curve(wins, strong, weak), strong.mean(), weak.mean())["apgr"]

    assert apgr(gain + rng.random(2000) * 0.1) > 0.8
    assert 0.4 < apgr(rng.random(2000)) < 0.6
    assert apgr(-gain + rng.random(2000) * 0.1) < 0.2


def test_classification_report_counts_abstentions() -> None:
    truth = ["a", "a", "b", "oos", "oos"]
    predicted = ["a", None, "b", None, "a"]
    report = classification_report(truth, predicted)
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["oos_recall"] == pytest.approx(0.5)
    assert report["abstain_rate"] == pytest.approx(2 / 5)
    assert report["per_class_recall"] == {"a": 0.5, "b": 1.0}
