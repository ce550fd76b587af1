"""A faiss inner-product index over expert exemplars, each vector labelled with its expert."""

from __future__ import annotations

import faiss
import numpy as np

from experts.schemas import ExpertOut
from router.encoder import Encoder


def expert_texts(expert: ExpertOut) -> list[str]:
    """What the router knows an expert by: its exemplars, else its description."""
    texts = list(expert.exemplars)
    if expert.description and not texts:
        texts.append(expert.description)
    return texts


class ExemplarIndex:
    def __init__(self, dim: int) -> None:
        self.index = faiss.IndexFlatIP(dim)
        self.labels: list[str] = []

    @classmethod
    def build(cls, experts: list[ExpertOut], encoder: Encoder) -> ExemplarIndex:
        index = cls(encoder.dim)
        texts, labels = [], []
        for expert in experts:
            for text in expert_texts(expert):
                texts.append(text)
                labels.append(expert.name)
        index.add(encoder.encode(texts), labels)
        return index

    def add(self, vectors: np.ndarray, labels: list[str]) -> None:
        if len(vectors):
            self.index.add(vectors)
            self.labels.extend(labels)

    def __len__(self) -> int:
        return self.index.ntotal

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        k = min(k, len(self))
        if k == 0:
            return []
        sims, ids = self.index.search(query.reshape(1, -1), k)
        return [(self.labels[i], float(s)) for i, s in zip(ids[0], sims[0], strict=True) if i >= 0]
