"""A faiss inner-product index over labelled vectors, with removal by id and save/load."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np

from experts.schemas import ExpertOut


def expert_texts(expert: ExpertOut) -> list[str]:
    """What the router knows an expert by: its exemplars, else its description."""
    texts = list(expert.exemplars)
    if expert.description and not texts:
        texts.append(expert.description)
    return texts


class ExemplarIndex:
    """Vectors keyed by int64 ids (IndexIDMap2), so single rows can be removed without a rebuild."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.labels: dict[int, str] = {}
        self.keys: dict[int, str] = {}
        self._next_id = 0

    def add(self, vectors: np.ndarray, labels: list[str], keys: list[str] | None = None) -> list[int]:
        if not len(vectors):
            return []
        ids = np.arange(self._next_id, self._next_id + len(vectors), dtype=np.int64)
        self._next_id += len(vectors)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        for i, label, key in zip(ids.tolist(), labels, keys or labels, strict=True):
            self.labels[i], self.keys[i] = label, key
        return ids.tolist()

    def remove(self, ids: list[int]) -> int:
        if not ids:
            return 0
        removed = int(self.index.remove_ids(np.asarray(ids, dtype=np.int64)))
        for i in ids:
            self.labels.pop(i, None)
            self.keys.pop(i, None)
        return removed

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        return self.search_batch(query.reshape(1, -1), k)[0]

    def search_batch(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        k = min(k, len(self))
        if k == 0:
            return [[] for _ in range(len(queries))]
        sims, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return [
            [(self.labels[int(i)], float(s)) for i, s in zip(row_ids, row_sims, strict=True) if i >= 0]
            for row_ids, row_sims in zip(ids, sims, strict=True)
        ]

    def save(self, path: Path) -> None:
        """Write `path` (faiss) and `path.json` (labels); a temp file + rename keeps a crash from tearing them."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        faiss.write_index(self.index, str(tmp))
        meta = {"dim": self.dim, "next_id": self._next_id, "labels": self.labels, "keys": self.keys}
        tmp_meta = path.with_suffix(".json.tmp")
        tmp_meta.write_text(json.dumps(meta))
        tmp.replace(path)
        tmp_meta.replace(path.with_suffix(".json"))

    @classmethod
    def load(cls, path: Path) -> ExemplarIndex:
        meta = json.loads(path.with_suffix(".json").read_text())
        index = cls(int(meta["dim"]))
        index.index = faiss.read_index(str(path))
        index._next_id = int(meta["next_id"])
        index.labels = {int(k): v for k, v in meta["labels"].items()}
        index.keys = {int(k): v for k, v in meta["keys"].items()}
        return index
