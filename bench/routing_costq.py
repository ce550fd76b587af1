"""Cost-quality routing on RouteLLM's outcomes (GPT-4 vs Mixtral on MMLU, GSM8K, MT-Bench).

Cross-validated by question: questions are dealt into 5 folds by a stable hash of their id (both
MT-Bench turns of a question share a fold); the outcome-kNN quality model is fitted on the other
folds' outcomes (all benchmarks pooled) and predicts the held-out fold, so no question is ever
scored by a model that saw it. Metrics exactly as RouteLLM's evaluate.py: thresholds at the 10-quantile
edges of the strong-win score, APGR by trapezoid over the strong-call share, CPT(50%), CPT(80%).
Contaminated rows are dropped, as RouteLLM does. MT-Bench is routed on turn 1 and scored on the mean
of both turns' judge scores. Outcomes are tagged with the skill path benchmark/subject (a tagger per
level, profiles shrunk subject -> benchmark -> overall). Baseline (same folds): a per-subject profile,
the mean strong-minus-weak outcome of the training questions of the same subject.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import astuple

import numpy as np
from routing_common import cached_encode, emit, read_jsonl

from router.encoder import Encoder
from router.metrics import cost_quality_metrics, routing_curve
from router.quality import QualityModel, QualityParams
from router.quality_tuning import tune

STRONG, WEAK = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"
FOLDS = 5
# k, the pull towards the skill profile and the skill gate's floor are chosen per fold by leave-one-out on
# the training folds only (router.quality_tuning: the curve's gain per benchmark, weighted by its questions).


def question_key(row: dict) -> str:  # type: ignore[type-arg]
    return row["id"].rsplit("/turn", 1)[0] if row["benchmark"] == "mt_bench" else row["id"]


def items(rows: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    """One routed item per question: MT-Bench turns merge (turn-1 text, mean score); scores scaled to [0, 1]."""
    merged: dict[str, dict] = {}  # type: ignore[type-arg]
    for row in rows:
        scale = 10.0 if row["benchmark"] == "mt_bench" else 1.0
        key = question_key(row)
        item = merged.setdefault(
            key, {"key": key, "benchmark": row["benchmark"], "subject": row["subject"], "query": None, "s": [], "w": []}
        )
        if item["query"] is None or row["id"].endswith("turn1"):
            item["query"] = row["query"]
        item["s"].append(float(row["outcomes"][STRONG]) / scale)
        item["w"].append(float(row["outcomes"][WEAK]) / scale)
    for item in merged.values():
        item["strong"], item["weak"] = float(np.mean(item["s"])), float(np.mean(item["w"]))
    return list(merged.values())


def fold_of(key: str) -> int:
    return int(hashlib.sha1(key.encode()).hexdigest(), 16) % FOLDS


def fit_fold(data: list[dict], vectors: np.ndarray, train: np.ndarray) -> tuple[QualityModel, QualityParams]:  # type: ignore[type-arg]
    """Fit on the training folds and pick (k, shrink, skill floor) by leave-one-out on them (never on the
    held-out fold)."""
    model = QualityModel(vectors.shape[1], [WEAK, STRONG])
    keys = [data[i]["key"] for i in train for _ in (0, 1)]
    experts = [e for _ in train for e in (WEAK, STRONG)]
    scores = [s for i in train for s in (data[i]["weak"], data[i]["strong"])]
    # Outcome rows carry their skill as a path, benchmark/subject: a subject with a handful of questions
    # cannot teach a tagger, its benchmark can once it has enough (GSM8K does; MT-Bench's 24 do not).
    skills = [f"{data[i]['benchmark']}/{data[i]['subject']}" for i in train for _ in (0, 1)]
    model.add_many(keys, np.repeat(vectors[train], 2, axis=0), experts, scores, skills)
    return model, tune(model)


def predict_out_of_fold(data: list[dict], vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[QualityParams]]:  # type: ignore[type-arg]
    folds = np.array([fold_of(d["key"]) for d in data])
    ours, subject, chosen = np.zeros(len(data)), np.zeros(len(data)), []
    for fold in range(FOLDS):
        train, test = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        model, k = fit_fold(data, vectors, train)
        chosen.append(k)
        predicted = model.predict(vectors[test])
        ours[test] = predicted[:, 1] - predicted[:, 0]
        gains: dict[str, list[float]] = defaultdict(list)
        for i in train:
            gains[data[i]["subject"]].append(data[i]["strong"] - data[i]["weak"])
        overall = float(np.mean([g for v in gains.values() for g in v]))
        subject[test] = [
            float(np.mean(gains[data[i]["subject"]])) if data[i]["subject"] in gains else overall for i in test
        ]
    return ours, subject, chosen


def paired_bootstrap(
    ours: np.ndarray, baseline: np.ndarray, strong: np.ndarray, weak: np.ndarray, rounds: int = 300
) -> list[float]:
    """95% interval of APGR(ours) - APGR(baseline) over questions resampled with replacement: how much of
    a difference is noise (30 MT-Bench questions decide little; 7,000 MMLU ones do)."""
    rng = np.random.default_rng(0)
    gaps = []
    for _ in range(rounds):
        pick = rng.integers(0, len(ours), len(ours))
        s, w = strong[pick], weak[pick]
        apgr = [
            cost_quality_metrics(routing_curve(x[pick], s, w), s.mean(), w.mean())["apgr"] for x in (ours, baseline)
        ]
        gaps.append(apgr[0] - apgr[1])
    return [round(float(q), 4) for q in np.quantile(gaps, [0.025, 0.975])]


def main() -> None:
    started = time.perf_counter()
    rows = read_jsonl("routellm_outcomes_dev.jsonl")
    encoder = Encoder()
    all_vectors = cached_encode(encoder, [r["query"] for r in rows], "routellm")
    by_query = {r["query"]: v for r, v in zip(rows, all_vectors, strict=True)}
    data = items([r for r in rows if not r.get("contaminated")])
    vectors = np.stack([by_query[d["query"]] for d in data])
    ours, subject, chosen = predict_out_of_fold(data, vectors)
    result: dict[str, object] = {
        "bench": "routing_costq",
        "folds": FOLDS,
        "questions": len(data),
        "k_shrink_floor_per_fold": [astuple(params) for params in chosen],
    }
    passed = True
    for bench in ("mmlu", "gsm8k", "mt_bench"):
        idx = np.array([i for i, d in enumerate(data) if d["benchmark"] == bench])
        strong = np.array([data[i]["strong"] for i in idx])
        weak = np.array([data[i]["weak"] for i in idx])
        row = {"n": len(idx)}
        for name, wins in (("ours_outcome_knn", ours[idx]), ("baseline_subject_profile", subject[idx])):
            metrics = cost_quality_metrics(routing_curve(wins, strong, weak), strong.mean(), weak.mean())
            row[name] = {k: round(v, 4) for k, v in metrics.items() if k in ("apgr", "cpt_50", "cpt_80")}
        row["ours_minus_baseline_apgr_ci95"] = paired_bootstrap(ours[idx], subject[idx], strong, weak)
        ok = row["ours_outcome_knn"]["apgr"] > max(0.5, row["baseline_subject_profile"]["apgr"])  # type: ignore[index]
        row["beats_random_and_baseline"] = ok
        passed = passed and ok
        result[bench] = row
    result["passed"] = passed
    result["seconds"] = round(time.perf_counter() - started, 1)
    emit(result)


if __name__ == "__main__":
    main()
