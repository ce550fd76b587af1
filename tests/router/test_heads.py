from __future__ import annotations

import json

import numpy as np
import pytest

from core.settings import get_settings
from router.encoder import Encoder
from router.heads import LogisticHead, MahalanobisHead

DATA = get_settings().seed_data_dir
INTENTS = ("transfer", "balance", "translate", "flight_status", "recipe", "calories")


def _slice(name: str, per_intent: int) -> list[dict]:  # type: ignore[type-arg]
    counts: dict[str, int] = {}
    rows = []
    for line in (DATA / name).read_text().splitlines():
        row = json.loads(line)
        key = row["intent"] if row["intent"] in INTENTS else "oos" if row["domain"] == "oos" else None
        if key and counts.get(key, 0) < per_intent:
            counts[key] = counts.get(key, 0) + 1
            rows.append(row)
    return rows


def test_mahalanobis_head_classifies_and_scores_oos_below_in_scope(encoder: Encoder) -> None:
    if not (DATA / "clinc_dev.jsonl").is_file():
        pytest.skip(f"benchmark data not found in {DATA}")
    train = [r for r in _slice("clinc_dev.jsonl", 30) if r["domain"] != "oos"]
    test = _slice("clinc_val.jsonl", 10)
    head = MahalanobisHead().fit(encoder.encode([r["text"] for r in train]), [r["intent"] for r in train])
    vectors = encoder.encode([r["text"] for r in test])
    oos = np.array([r["domain"] == "oos" for r in test])
    probs = head.predict_proba(vectors)
    assert probs.shape == (len(test), len(INTENTS)) and np.allclose(probs.sum(1), 1.0)
    predicted = np.array(head.labels)[probs.argmax(1)]
    truth = np.array([r["intent"] for r in test])
    assert (predicted == truth)[~oos].mean() >= 0.9
    scores = head.in_scope(vectors)
    # Most OOS queries sit farther from every intent than the in-scope ones: ranking AUROC well above chance.
    auroc = (scores[~oos][:, None] > scores[oos][None, :]).mean()
    assert auroc > 0.85
    # The distance is the thing compared, so it must agree with `distances` and be unchanged by refitting.
    assert np.allclose(scores, -head.distances(vectors).min(1))
    again = MahalanobisHead().fit(encoder.encode([r["text"] for r in train]), [r["intent"] for r in train])
    assert np.allclose(again.in_scope(vectors), scores)


def test_heads_refuse_to_score_before_fitting() -> None:
    for head in (MahalanobisHead(), LogisticHead()):
        with pytest.raises(RuntimeError):
            head.in_scope(np.zeros((1, 4)))


def test_score_ensemble_standardises_on_fit_rows_and_sums() -> None:
    from router.ensemble import ScoreEnsemble

    # Column 2 is on a 100x scale: after standardising, both columns weigh the same.
    tune = np.array([[0.0, 0.0], [1.0, 100.0], [2.0, 200.0]])
    ensemble = ScoreEnsemble().fit(tune)
    combined = ensemble.combine(np.array([[1.0, 100.0], [2.0, 0.0], [0.0, 200.0]]))
    spread = tune[:, 0].std()
    assert np.allclose(combined, [0.0, 1 / spread - 1 / spread, -1 / spread + 1 / spread])
    assert np.allclose(ensemble.combine(np.array([[3.0, 300.0]])), [2 * 2 / spread])
    with pytest.raises(RuntimeError):
        ScoreEnsemble().combine(tune)
    with pytest.raises(ValueError):
        ScoreEnsemble().fit(np.zeros(3))
