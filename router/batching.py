"""Micro-batching: concurrent routing requests are encoded and scored together, one model call per batch.

At idle there is no waiting window: a lone request runs at once, so single-query latency stays one
encoder call. Requests that arrive while a batch runs queue up and go together in the next call.
In a busy period the batcher also holds a new batch open while requests keep arriving (until they
pause for `quiet_s`, at most `hold_share` of the last batch's run time): right after a batch's
results go out its callers send their next requests, which come in over a few milliseconds, and
without the hold the first of them would leave in a batch of one while the rest wait for it. With 64
wrk clients on /v1/route (a standalone server on this project's 2-core machine, 2-3 runs each) batches
of 40/24 became 64 and throughput went from 455-491 to 507-541 requests/s. Results go back to each
event loop in one callback per batch, not one wake-up per request. With `workers` above one, several
threads take batches from the one queue, each with its own hold (the router's lanes).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BatchRun = Callable[[list[T]], Sequence[R | BaseException]]
_Waiting = tuple[T, asyncio.AbstractEventLoop, asyncio.Future[R]]


class MicroBatcher(Generic[T, R]):
    """`run` gets every item waiting when it is free and returns one result (or exception) per item."""

    def __init__(
        self,
        run: BatchRun[T, R],
        max_batch: int = 128,
        name: str = "moe-batcher",
        quiet_s: float = 0.001,
        hold_share: float = 0.25,
        workers: int = 1,
        on_worker_start: Callable[[], None] | None = None,
    ) -> None:
        self.run = run
        self.max_batch = max_batch
        self.name = name
        self.quiet_s = quiet_s
        self.hold_share = hold_share
        self.workers = workers
        self.on_worker_start = on_worker_start
        self._queue: queue.SimpleQueue[_Waiting[T, R] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self.batches = 0  # calls of `run`, for tests and metrics

    async def submit(self, item: T) -> R:
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.put((item, loop, future))
        return await future

    def _ensure_started(self) -> None:
        if not self._threads:
            with self._start_lock:
                if not self._threads:
                    threads = [
                        threading.Thread(target=self._loop, name=f"{self.name}-{i}", daemon=True)
                        for i in range(self.workers)
                    ]
                    for thread in threads:
                        thread.start()
                    self._threads = threads

    def _loop(self) -> None:
        if self.on_worker_start is not None:
            self.on_worker_start()
        last = _LastBatch()
        while True:
            first = self._queue.get()
            if first is None:
                self._queue.put(None)  # the other workers stop too
                return
            batch = [first]
            deadline = time.perf_counter() + last.hold(self.hold_share)
            while len(batch) < self.max_batch:
                wait = min(self.quiet_s, deadline - time.perf_counter())
                try:
                    item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            started = time.perf_counter()
            self._run(batch)
            last.size, last.run_s, last.end = len(batch), time.perf_counter() - started, time.perf_counter()

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
        if self._threads:
            self._queue.put(None)
            for thread in self._threads:
                thread.join(timeout=5)
            self._threads = []
            try:
                self._queue.get_nowait()  # the stop marker, so a later submit starts afresh
            except queue.Empty:
                pass


class _LastBatch:
    """One worker's previous batch, for how long its next one is held open."""

    size = 0
    run_s = 0.0
    end = 0.0

    def hold(self, share: float) -> float:
        """Not at all at idle (the last batch was a lone request, or it ended longer ago than it ran),
        else up to `share` of the last batch's run time."""
        if self.size <= 1 or time.perf_counter() - self.end > self.run_s:
            return 0.0
        return share * self.run_s


def _deliver(outcomes: list[tuple[asyncio.Future[R], R | BaseException]]) -> None:
    for future, result in outcomes:
        if future.done():  # the caller went away (cancelled)
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
