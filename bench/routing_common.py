"""Shared by the routing benchmarks: data loading and an on-disk embedding cache (.cache/bench)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import core.env  # noqa: E402,F401  (offline defaults before heavy imports)
from core.settings import get_settings  # noqa: E402

CACHE = Path(os.environ.get("MOE_BENCH_CACHE", ROOT / ".cache" / "bench"))


def data_dir() -> Path:
    return get_settings().seed_data_dir


def read_jsonl(name: str) -> list[dict]:
    path = data_dir() / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def cached_encode(encoder, texts: list[str], tag: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Encoding 15k texts takes minutes on a shared CPU; the vectors depend only on (encoder, texts)."""
    digest = hashlib.sha1((str(getattr(encoder, "path", "")) + "\x00" + "\x1e".join(texts)).encode()).hexdigest()[:16]
    path = CACHE / f"{tag}-{digest}.npy"
    if path.is_file():
        return np.load(path)
    vectors = encoder.encode(texts, batch_size=128)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def stable_half(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest(), 16) % 2


def emit(result: dict) -> None:
    print(json.dumps(result, sort_keys=True))
