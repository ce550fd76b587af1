"""Routing metrics: classification quality with abstention, and RouteLLM's cost-quality metrics."""

from __future__ import annotations

from collections import Counter

import numpy as np

OOS = "oos"


def classification_report(truth: list[str], predicted: list[str | None], oos_label: str = OOS) -> dict[str, object]:
    """`predicted[i]` is None when the router abstained (null expert). OOS rows are right iff abstained."""
    in_scope = [i for i, t in enumerate(truth) if t != oos_label]
    oos = [i for i, t in enumerate(truth) if t == oos_label]
    labels = sorted({truth[i] for i in in_scope})
    recall = {label: float(np.mean([predicted[i] == label for i in in_scope if truth[i] == label])) for label in labels}
    f1 = []
    for label in labels:
        tp = sum(1 for i in in_scope if truth[i] == label and predicted[i] == label)
        fp = sum(1 for i, p in enumerate(predicted) if p == label and truth[i] != label)
        fn = sum(1 for i in in_scope if truth[i] == label and predicted[i] != label)
        f1.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    abstained = [p is None for p in predicted]
    return {
        "n": len(truth),
        "accuracy": float(np.mean([predicted[i] == truth[i] for i in in_scope])) if in_scope else 0.0,
        "macro_f1": float(np.mean(f1)) if f1 else 0.0,
        "per_class_recall": recall,
        "oos_recall": float(np.mean([abstained[i] for i in oos])) if oos else None,
        "abstain_rate": float(np.mean(abstained)) if truth else 0.0,
        "in_scope_abstain_rate": float(np.mean([abstained[i] for i in in_scope])) if in_scope else 0.0,
    }


def confusion(truth: list[str], predicted: list[str | None]) -> tuple[list[str], np.ndarray]:
    labels = sorted({*truth, *(p if p is not None else OOS for p in predicted)})
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(truth, predicted, strict=True):
        matrix[labels.index(t), labels.index(p if p is not None else OOS)] += 1
    return labels, matrix


def routing_curve(
    win_rates: np.ndarray, strong: np.ndarray, weak: np.ndarray, num_results: int = 10
) -> list[tuple[float, float]]:
    """RouteLLM's evaluate loop: thresholds at the `num_results`-quantile edges of the router's strong-win
    scores; a query goes to the strong model if its score >= threshold (> for the last edge).
    Returns (strong_percentage, quality) points; quality is the mean outcome, like their `accuracy`."""
    edges = np.quantile(win_rates, np.linspace(0.0, 1.0, num_results + 1))
    points = []
    for i, threshold in enumerate(edges):
        selection = win_rates >= threshold if i != len(edges) - 1 else win_rates > threshold
        quality = np.where(selection, strong, weak).mean()
        points.append((float(selection.mean() * 100), float(quality)))
    return points


def cost_quality_metrics(points: list[tuple[float, float]], strong_quality: float, weak_quality: float) -> dict:
    """APGR (trapezoid over the strong-call share), and CPT(x): strong-call % needed for x of the gap."""
    order = sorted(points)
    pct = np.array([p for p, _ in order])
    quality = np.array([q for _, q in order])
    auc = float(np.trapezoid(quality, pct / 100))
    weak_auc = float(np.trapezoid(np.full(len(pct), weak_quality), pct / 100))
    strong_auc = float(np.trapezoid(np.full(len(pct), strong_quality), pct / 100))
    gap = strong_quality - weak_quality
    cpt = {f"cpt_{int(x * 100)}": float(np.interp(x * gap + weak_quality, quality, pct)) for x in (0.2, 0.5, 0.8)}
    apgr = (auc - weak_auc) / (strong_auc - weak_auc) if strong_auc != weak_auc else float("nan")
    return {"apgr": apgr, "auc": auc, **cpt}


def majority(labels: list[str]) -> str:
    return Counter(labels).most_common(1)[0][0]
