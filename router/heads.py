"""A cosine-margin head on frozen embeddings (CosFace-style), trained in seconds on CPU.

Why not plain logistic regression: a margin between classes on the unit sphere leaves room
around every class for "none of these", so the in-scope score (negative energy of the scaled
cosines) separates out-of-scope queries far better at the same in-scope accuracy.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class _Net(nn.Module):
    def __init__(self, dim: int, hidden: int, out: int, classes: int) -> None:
        super().__init__()
        self.body = (
            nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, out)) if hidden else nn.Linear(dim, out)
        )
        self.weight = nn.Parameter(torch.randn(classes, out) * 0.05)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.body(x), dim=-1) @ F.normalize(self.weight, dim=-1).T


class CosineHead:
    def __init__(
        self, hidden: int = 512, out: int = 256, scale: float = 30.0, margin: float = 0.2, epochs: int = 15
    ) -> None:
        self.hidden, self.out, self.scale, self.margin, self.epochs = hidden, out, scale, margin, epochs
        self.labels: list[str] = []
        self.net: _Net | None = None

    def fit(self, vectors: np.ndarray, labels: list[str], seed: int = 0, batch: int = 256) -> CosineHead:
        self.labels = sorted(set(labels))
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        x = torch.as_tensor(vectors, dtype=torch.float32)
        y = torch.as_tensor([self.labels.index(label) for label in labels])
        self.net = _Net(x.shape[1], self.hidden, self.out, len(self.labels))
        optimiser = torch.optim.AdamW(self.net.parameters(), lr=2e-3, weight_decay=1e-4)
        for _ in range(self.epochs):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), batch):
                rows = order[start : start + batch]
                cos = self.net(x[rows])
                # CosFace: the true class must win by `margin` in cosine, not just win.
                logits = self.scale * (cos - self.margin * F.one_hot(y[rows], len(self.labels)))
                loss = F.cross_entropy(logits, y[rows])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        self.net.eval()
        return self

    def cosines(self, vectors: np.ndarray) -> np.ndarray:
        if self.net is None:
            raise RuntimeError("the head is not fitted")
        with torch.no_grad():
            return self.net(torch.as_tensor(vectors, dtype=torch.float32)).numpy().astype(np.float64)

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        logits = self.scale * self.cosines(vectors)
        logits -= logits.max(1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(1, keepdims=True)

    def in_scope(self, vectors: np.ndarray) -> np.ndarray:
        """Negative energy (log-sum-exp of the scaled cosines), minus the top logit's own scale offset."""
        logits = self.scale * self.cosines(vectors)
        top = logits.max(1)
        return top + np.log(np.exp(logits - top[:, None]).sum(1))


class LogisticHead:
    """Multinomial logistic regression; in-scope score = log-sum-exp of its logits (negative energy).

    Energy keeps the information softmax throws away: an out-of-scope query tends to have *all*
    logits low, even when one of them wins the softmax by a wide margin."""

    def __init__(self, c: float = 20.0) -> None:
        self.c = c
        self.labels: list[str] = []
        self.model: object | None = None

    def fit(self, vectors: np.ndarray, labels: list[str]) -> LogisticHead:
        from sklearn.linear_model import LogisticRegression

        self.labels = sorted(set(labels))
        y = np.array([self.labels.index(label) for label in labels])
        self.model = LogisticRegression(C=self.c, max_iter=3000).fit(vectors, y)
        return self

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("the head is not fitted")
        scores = np.asarray(self.model.decision_function(vectors), dtype=np.float64)  # type: ignore[attr-defined]
        # Two classes: sklearn gives one column, the log-odds of the second; as logits that is [0, log-odds].
        return np.stack([np.zeros_like(scores), scores], axis=1) if scores.ndim == 1 else scores

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        logits = self.logits(vectors)
        logits -= logits.max(1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(1, keepdims=True)

    def in_scope(self, vectors: np.ndarray) -> np.ndarray:
        logits = self.logits(vectors)
        top = logits.max(1)
        return top + np.log(np.exp(logits - top[:, None]).sum(1))


class MahalanobisHead:
    """Class-conditional Gaussians with one shared (tied, shrunk) covariance: a generative head.

    Why: a discriminative head only learns where classes border each other, so a query far from all
    of them can still get a confident logit; the distance to the nearest class mean grows with it.
    Probabilities are a softmax over -distance/2 (LDA's posterior); in-scope = -min distance."""

    def __init__(self, shrink: float = 0.1) -> None:
        self.shrink = shrink
        self.labels: list[str] = []
        self.means: np.ndarray | None = None
        self.precision: np.ndarray | None = None

    def fit(self, vectors: np.ndarray, labels: list[str]) -> MahalanobisHead:
        self.labels = sorted(set(labels))
        x = np.asarray(vectors, dtype=np.float64)
        y = np.array([self.labels.index(label) for label in labels])
        self.means = np.stack([x[y == k].mean(0) for k in range(len(self.labels))])
        residual = x - self.means[y]
        covariance = residual.T @ residual / max(len(x) - len(self.labels), 1)
        # Shrink toward a scaled identity: 384 dims from a few thousand rows is a noisy estimate.
        ridge = np.trace(covariance) / covariance.shape[0] * np.eye(covariance.shape[0])
        self.precision = np.linalg.inv((1 - self.shrink) * covariance + self.shrink * ridge)
        return self

    def distances(self, vectors: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance from every row to every class mean."""
        if self.means is None or self.precision is None:
            raise RuntimeError("the head is not fitted")
        x = np.asarray(vectors, dtype=np.float64)
        px, pm = x @ self.precision, self.means @ self.precision
        squared = (px * x).sum(1)[:, None] - 2 * px @ self.means.T + (pm * self.means).sum(1)[None, :]
        return np.maximum(squared, 0.0)

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        logits = -0.5 * self.distances(vectors)
        logits -= logits.max(1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(1, keepdims=True)

    def in_scope(self, vectors: np.ndarray) -> np.ndarray:
        return -self.distances(vectors).min(1)
