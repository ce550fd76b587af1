"""Micro-batching: concurrent callers' texts are encoded together, one encoder call per batch.

There is no waiting window: a lone request is encoded at once; requests that arrive while the
encoder is busy queue up and go together in the next call. That keeps single-query latency at one
encoder call and lets throughput under load approach the encoder's batched throughput.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future

import numpy as np

from router.encoder import TextEncoder


class MicroBatcher:
    def __init__(self, encoder: TextEncoder, max_batch: int = 128) -> None:
        self.encoder = encoder
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[str, Future[np.ndarray]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = 0  # encoder calls made, for tests and metrics

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="moe-encode-batcher", daemon=True)
                    self._thread.start()

    def submit(self, text: str) -> Future[np.ndarray]:
        self._ensure_started()
        future: Future[np.ndarray] = Future()
        self._queue.put((text, future))
        return future

    async def encode(self, text: str) -> np.ndarray:
        return await asyncio.wrap_future(self.submit(text))

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            self._run(batch)

    def _run(self, batch: list[tuple[str, Future[np.ndarray]]]) -> None:
        try:
            vectors = self.encoder.encode([text for text, _ in batch], batch_size=len(batch))
            self.batches += 1
        except Exception as exc:  # noqa: BLE001  (hand the failure to every waiting caller)
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), vector in zip(batch, vectors, strict=True):
            future.set_result(vector)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None
