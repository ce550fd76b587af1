"""MMLU skill routing: route test questions to their category (4) and subcategory (17).

Exemplars: `mmlu_val` (1,517 questions). Scored on `mmlu_test` (a deterministic 1-in-N sample by
default to keep the run short on a shared CPU; `--stride 1` scores all 14,042). Ours: the logistic
head fitted on subjects (57 fine labels) and summed up to the target label; baseline in the same run:
plain exemplar kNN voting on the target label directly.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from routing_common import cached_encode, emit, read_jsonl

from router.encoder import Encoder
from router.fitted import FittedHead
from router.heads import LogisticHead
from router.index import ExemplarIndex
from router.strategies.knn import KnnStrategy


def text(row: dict) -> str:  # type: ignore[type-arg]
    return row["question"] + "\n" + "\n".join(row["choices"])


def knn_accuracy(train: np.ndarray, labels: list[str], test: np.ndarray, truth: list[str]) -> float:
    index = ExemplarIndex(train.shape[1])
    index.add(train, labels)
    knn = KnnStrategy()
    knn.expert_names = sorted(set(labels))
    predicted = [max(v := knn.vote(hits), key=v.get) for hits in index.search_batch(test, knn.neighbours)]
    return float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stride", type=int, default=4, help="score every N-th mmlu_test question")
    args = parser.parse_args()
    started = time.perf_counter()
    val = read_jsonl("mmlu_val.jsonl")
    test = read_jsonl("mmlu_test.jsonl")[:: args.stride]
    encoder = Encoder()
    train_vectors = cached_encode(encoder, [text(r) for r in val], "mmlu_val")
    test_vectors = cached_encode(encoder, [text(r) for r in test], f"mmlu_test_s{args.stride}")
    subject_head = LogisticHead().fit(train_vectors, [r["subject"] for r in val])
    result: dict[str, object] = {"bench": "routing_mmlu", "test_rows": len(test), "stride": args.stride}
    for level in ("category", "subcategory"):
        head = FittedHead(subject_head, {r["subject"]: r[level] for r in val})
        experts, probs = head.expert_proba(test_vectors)
        truth = [r[level] for r in test]
        ours = float(np.mean([experts[i] == t for i, t in zip(probs.argmax(1), truth, strict=True)]))
        baseline = knn_accuracy(train_vectors, [r[level] for r in val], test_vectors, truth)
        result[level] = {
            "labels": len(set(truth)),
            "ours_subject_head": ours,
            "baseline_knn": baseline,
            "beats_baseline": ours > baseline,
        }
    result["seconds"] = round(time.perf_counter() - started, 1)
    emit(result)


if __name__ == "__main__":
    main()
