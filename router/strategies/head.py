"""Trained head: a logistic-regression classifier on frozen embeddings, probability-calibrated."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression

from experts.schemas import ExpertOut
from router.index import expert_texts
from router.strategies.base import FitContext, uniform


class LinearHead:
    """Fitted from (vector, label) pairs; `predict_proba` rows follow `labels`."""

    def __init__(self, c: float = 10.0, calibrate: bool = True) -> None:
        self.c = c
        self.calibrate = calibrate
        self.labels: list[str] = []
        self.model: LogisticRegression | CalibratedClassifierCV | None = None

    def fit(self, vectors: np.ndarray, labels: list[str]) -> LinearHead:
        self.labels = sorted(set(labels))
        if len(self.labels) < 2:
            self.model = None
            return self
        y = np.array([self.labels.index(label) for label in labels])
        base = LogisticRegression(C=self.c, max_iter=2000)
        folds = min(Counter(labels).values())
        if self.calibrate and folds >= 3:
            # Sigmoid calibration on held-out folds: raw LR probabilities are over-confident with many features.
            self.model = CalibratedClassifierCV(base, method="sigmoid", cv=min(folds, 5))
        else:
            self.model = base
        self.model.fit(vectors, y)
        return self

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        if self.model is None:
            return np.ones((len(vectors), max(len(self.labels), 1)), dtype=np.float64)
        return np.asarray(self.model.predict_proba(vectors), dtype=np.float64)


class HeadStrategy:
    name = "head"

    def __init__(self, c: float = 10.0) -> None:
        self.head = LinearHead(c)
        self.expert_names: list[str] = []
        self._fitted_on: tuple[str, ...] = ()
        self.pretrained: Any = None  # a FittedHead from `moe router fit`; used when it knows these experts

    def fit(self, experts: list[ExpertOut], context: FitContext) -> None:
        self.expert_names = [e.name for e in experts]
        texts, labels = [], []
        for expert in experts:
            for text in expert_texts(expert):
                texts.append(text)
                labels.append(expert.name)
        key = tuple(f"{label}\x1f{text}" for label, text in zip(labels, texts, strict=True))
        if key != self._fitted_on:
            self.head = LinearHead(self.head.c).fit(context.encoder.encode(texts), labels) if texts else LinearHead()
            self._fitted_on = key

    def score(self, query: np.ndarray) -> dict[str, float]:
        return self.score_many(query.reshape(1, -1))[0]

    def score_many(self, queries: np.ndarray) -> list[dict[str, float]]:
        if self.pretrained is not None and set(self.pretrained.experts) & set(self.expert_names):
            labels, probs = self.pretrained.expert_proba(queries)
        elif len(self.head.labels) < 2:
            single = uniform(self.expert_names) if len(self.head.labels) == 0 else self._single()
            return [dict(single) for _ in queries]
        else:
            labels, probs = self.head.labels, self.head.predict_proba(queries)
        return [self._normalised(dict(zip(labels, row.tolist(), strict=True))) for row in probs]

    def _normalised(self, by_label: dict[str, float]) -> dict[str, float]:
        scores = {name: by_label.get(name, 0.0) for name in self.expert_names}
        total = sum(scores.values()) or 1.0
        return {name: s / total for name, s in scores.items()}

    def _single(self) -> dict[str, float]:
        only = self.head.labels[0]
        return {name: 1.0 if name == only else 0.0 for name in self.expert_names}
