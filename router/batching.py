"""Micro-batching: concurrent routing requests are encoded and scored together, one model call per batch.

There is no waiting window: a lone request runs at once; requests that arrive while a batch runs
queue up and go together in the next call. That keeps single-query latency at one encoder call and
lets throughput under load approach the encoder's batched throughput. Results go back to each
event loop in one callback per batch, not one wake-up per request.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BatchRun = Callable[[list[T]], Sequence[R | BaseException]]
_Waiting = tuple[T, asyncio.AbstractEventLoop, asyncio.Future[R]]


class MicroBatcher(Generic[T, R]):
    """`run` gets every item waiting when it is free and returns one result (or exception) per item."""

    def __init__(self, run: BatchRun[T, R], max_batch: int = 128, name: str = "moe-batcher") -> None:
        self.run = run
        self.max_batch = max_batch
        self.name = name
        self._queue: queue.SimpleQueue[_Waiting[T, R] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = 0  # calls of `run`, for tests and metrics

    async def submit(self, item: T) -> R:
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.put((item, loop, future))
        return await future

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                    self._thread.start()

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

    def _run(self, batch: list[_Waiting[T, R]]) -> None:
        try:
            results: Sequence[R | BaseException] = self.run([item for item, _, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} items gave {len(results)} results")
        except Exception as exc:  # noqa: BLE001  (hand the failure to every waiting caller)
            results = [exc] * len(batch)
        self.batches += 1
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[R], R | BaseException]]] = defaultdict(list)
        for (_, loop, future), result in zip(batch, results, strict=True):
            by_loop[loop].append((future, result))
        for loop, outcomes in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, outcomes)
            except RuntimeError:  # that loop has closed: nobody is waiting any more
                pass

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None


def _deliver(outcomes: list[tuple[asyncio.Future[R], R | BaseException]]) -> None:
    for future, result in outcomes:
        if future.done():  # the caller went away (cancelled)
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
