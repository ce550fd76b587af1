"""Offline evaluation: route a labelled test file, or replay outcomes for cost-quality (RouteLLM metrics)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import numpy as np

from core.errors import InvalidRequest
from experts.schemas import ExpertKind, ExpertOut
from router.data import Example
from router.encoder import TextEncoder
from router.fitted import FittedRouter
from router.fitting import predict
from router.metrics import OOS, classification_report, cost_quality_metrics, routing_curve
from router.quality import QualityModel, QualityParams
from router.quality_tuning import tune as tune_on_outcomes


def experts_from_examples(exemplars: list[Example], oos_label: str = OOS) -> list[ExpertOut]:
    """One expert per label, its exemplars the label's texts (how the registry would hold them)."""
    texts: dict[str, list[str]] = defaultdict(list)
    for e in exemplars:
        if e.label != oos_label:
            texts[e.label].append(e.text)
    now = datetime.now(UTC)
    return [
        ExpertOut(id=i, name=label, kind=ExpertKind.local, base_model="eval", exemplars=rows, created_at=now,
                  updated_at=now)
        for i, (label, rows) in enumerate(sorted(texts.items()), start=1)
    ]  # fmt: skip


def check_labels(test: list[Example], known: set[str], oos_label: str = OOS) -> None:
    unknown = sorted({e.label for e in test} - known - {oos_label})
    if unknown:
        shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise InvalidRequest(f"labels in the test file that no expert has: {shown}", param="test")


def _latency(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(samples, 50)), "p95_ms": float(np.percentile(samples, 95))}


def evaluate_router(router: Any, test: list[Example], strategy: str | None, oos_label: str = OOS) -> dict[str, Any]:
    """Route each test text one at a time (so latencies are per query) through a fitted Router."""
    check_labels(test, {e.name for e in router.experts}, oos_label)
    predicted: list[str | None] = []
    latencies = []
    for example in test:
        started = time.perf_counter()
        decision = router.route(example.text, strategy)
        latencies.append((time.perf_counter() - started) * 1e3)
        predicted.append(None if decision.out_of_scope else decision.experts[0].name)
    report = classification_report([e.label for e in test], predicted, oos_label)
    return {**report, "latency": _latency(latencies), "predicted": predicted}


def evaluate_fitted(
    fitted: FittedRouter, encoder: TextEncoder, test: list[Example], oos_label: str = OOS
) -> dict[str, Any]:
    if fitted.head is None:
        raise InvalidRequest("nothing fitted yet; run `moe router fit` first", param="router")
    check_labels(test, set(fitted.head.experts), oos_label)
    latencies = []
    vectors = []
    for example in test:
        started = time.perf_counter()
        vector = encoder.encode([example.text])
        predict(fitted, vector)
        latencies.append((time.perf_counter() - started) * 1e3)
        vectors.append(vector[0])
    labels, scores = predict(fitted, np.stack(vectors))
    threshold = fitted.null_threshold
    predicted = [None if threshold is not None and s < threshold else p for p, s in zip(labels, scores, strict=True)]
    report = classification_report([e.label for e in test], predicted, oos_label)
    return {**report, "null_threshold": threshold, "latency": _latency(latencies), "predicted": predicted}


def cost_quality(
    encoder: TextEncoder,
    train: list[dict[str, Any]],
    test: list[dict[str, Any]],
    strong: str,
    weak: str,
    params: QualityParams | None = None,
    tune: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fit quality predictions on `train` outcome rows, score RouteLLM's metrics on `test` rows.

    Rows: {"query": str, "outcomes": {expert: score}, "skill": optional skill path}. The router's
    strong-win score is the predicted quality margin of strong over weak. With `tune`, k, the pull towards
    the skill prior and the skill floor are chosen by leave-one-out on `train` (router.quality_tuning)
    instead of taken from `params`."""
    for name, rows in (("outcomes", train), ("test", test)):
        missing = [i for i, r in enumerate(rows) if strong not in r["outcomes"] or weak not in r["outcomes"]]
        if missing:
            raise InvalidRequest(f"{name} row {missing[0] + 1} lacks an outcome for '{strong}' or '{weak}'", param=name)
    model = QualityModel(encoder.dim, [weak, strong], **asdict(params or QualityParams()))
    vectors = encoder.encode([r["query"] for r in train], batch_size=64)
    keys, stacked, experts, scores, skills = [], [], [], [], []
    for i, row in enumerate(train):
        for expert in (weak, strong):
            keys.append(str(i))
            stacked.append(vectors[i])
            experts.append(expert)
            scores.append(float(row["outcomes"][expert]))
            skills.append(row.get("skill"))
    model.add_many(keys, np.stack(stacked), experts, scores, skills)
    if tune:
        tune_on_outcomes(model, progress=progress)
    predicted = model.predict(encoder.encode([r["query"] for r in test], batch_size=64))
    wins = predicted[:, 1] - predicted[:, 0]
    strong_scores = np.array([float(r["outcomes"][strong]) for r in test])
    weak_scores = np.array([float(r["outcomes"][weak]) for r in test])
    points = routing_curve(wins, strong_scores, weak_scores)
    metrics = cost_quality_metrics(points, float(strong_scores.mean()), float(weak_scores.mean()))
    return {**metrics, "points": points, "strong_quality": float(strong_scores.mean()),
            "weak_quality": float(weak_scores.mean()), "n": len(test),
            "skills": len({r["skill"] for r in train if r.get("skill")}), "setting": asdict(model.params)}  # fmt: skip
