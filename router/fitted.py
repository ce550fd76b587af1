"""What `moe router fit` produces: a head on fine labels mapped to experts, and a null-expert threshold;
with `--finetune`, also the fine-tuned encoder's folder and the in-scope score ensemble (router.scope).

Saved as one pickle under the router state dir (written to a temp file, then renamed), loaded at start.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from router.heads import CosineHead, LogisticHead, MahalanobisHead
from router.scope import ScopeScorer

log = logging.getLogger(__name__)
FITTED_FILE = "fitted.pkl"


@dataclass
class FittedHead:
    """A classifier over fine labels (e.g. intents); `expert_of` maps each to its expert (e.g. domain)."""

    head: CosineHead | LogisticHead | MahalanobisHead
    expert_of: dict[str, str]

    @property
    def experts(self) -> list[str]:
        return sorted(set(self.expert_of.values()))

    def expert_proba(self, vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
        probs = self.head.predict_proba(vectors)
        experts = self.experts
        matrix = np.zeros((len(self.head.labels), len(experts)))
        for i, label in enumerate(self.head.labels):
            matrix[i, experts.index(self.expert_of[label])] = 1.0
        return experts, probs @ matrix

    def in_scope(self, vectors: np.ndarray) -> list[float]:
        return self.head.in_scope(vectors).tolist()


@dataclass
class FittedRouter:
    head: FittedHead | None = None
    null_threshold: float | None = None
    report: dict[str, float] = field(default_factory=dict)
    encoder_dir: str | None = None  # a fine-tuned encoder: the head and scope scorer live in its space
    scope: ScopeScorer | None = None

    def in_scope(self, vectors: np.ndarray) -> np.ndarray:
        """Higher = more in scope; the null threshold applies to this score."""
        if self.head is None:
            raise ValueError("no head fitted")
        if self.scope is not None:
            return self.scope.score(self.head.head, vectors)
        return np.asarray(self.head.in_scope(vectors))

    def save(self, state_dir: Path) -> Path:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / FITTED_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(self))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, state_dir: Path) -> FittedRouter | None:
        path = state_dir / FITTED_FILE
        if not path.is_file():
            return None
        try:
            fitted = pickle.loads(path.read_bytes())  # our own file, written by `moe router fit`
        except (OSError, pickle.UnpicklingError, AttributeError, EOFError) as exc:
            log.warning("ignoring unreadable %s: %s", path, exc)
            return None
        return fitted if isinstance(fitted, cls) else None
