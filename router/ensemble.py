"""An out-of-scope score made of several: each standardised on tuning rows, then summed.

Why: scores from different views (a head's energy on the frozen encoder, cosine to the nearest
class prototype and to the nearest exemplar on a fine-tuned one) make different mistakes; their
sum separates out-of-scope queries better than any one. The statistics come from the rows the
null threshold is tuned on (labels unused), never from the rows being scored.
"""

from __future__ import annotations

import numpy as np


class ScoreEnsemble:
    def __init__(self) -> None:
        self.centre: np.ndarray | None = None
        self.spread: np.ndarray | None = None

    def fit(self, scores: np.ndarray) -> ScoreEnsemble:
        """`scores`: one row per tuning query, one column per score (higher = more in scope)."""
        matrix = np.asarray(scores, dtype=np.float64)
        if matrix.ndim != 2 or len(matrix) < 2:
            raise ValueError("need a (rows >= 2, scores) matrix to fit on")
        # Median, not mean: the out-of-scope tail should not move the centre.
        self.centre = np.median(matrix, axis=0)
        self.spread = np.maximum(matrix.std(axis=0), 1e-12)
        return self

    def combine(self, scores: np.ndarray) -> np.ndarray:
        if self.centre is None or self.spread is None:
            raise RuntimeError("the ensemble is not fitted")
        return ((np.asarray(scores, dtype=np.float64) - self.centre) / self.spread).sum(axis=1)
