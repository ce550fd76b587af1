"""Micro-batching: concurrent calls with the same batch key wait a short window and run as one batch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from core.errors import MoEError
from experts.backends.base import CallOutcome
from experts.generation import ExpertCall, GenerationResult

log = logging.getLogger(__name__)

BatchRun = Callable[[Sequence[ExpertCall]], Awaitable[list[CallOutcome]]]


@dataclass
class _Pending:
    call: ExpertCall
    future: asyncio.Future[GenerationResult] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class MicroBatcher:
    """One queue and one consumer per batch key; a batch closes after `window_ms` or `max_batch` calls."""

    def __init__(
        self, key: Callable[[ExpertCall], str], run_batch: BatchRun, window_ms: float = 8.0, max_batch: int = 32
    ) -> None:
        self.key = key
        self.run_batch = run_batch
        self.window_s = window_ms / 1000
        self.max_batch = max_batch
        self._queues: dict[str, asyncio.Queue[_Pending]] = {}
        self._consumers: list[asyncio.Task[None]] = []
        self.batches_run = 0

    async def submit(self, call: ExpertCall) -> GenerationResult:
        pending = _Pending(call)
        self._queue(self.key(call)).put_nowait(pending)
        return await pending.future

    async def aclose(self) -> None:
        for task in self._consumers:
            task.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)
        self._consumers.clear()
        self._queues.clear()

    def _queue(self, key: str) -> asyncio.Queue[_Pending]:
        if key not in self._queues:
            self._queues[key] = asyncio.Queue()
            self._consumers.append(asyncio.create_task(self._consume(self._queues[key]), name=f"batch:{key}"))
        return self._queues[key]

    async def _consume(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            batch = [await queue.get()]
            deadline = asyncio.get_running_loop().time() + self.window_s
            while len(batch) < self.max_batch:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), timeout))
                except TimeoutError:
                    break
            await self._run(batch)

    async def _run(self, batch: list[_Pending]) -> None:
        try:
            outcomes: Sequence[CallOutcome | BaseException] = await self.run_batch([p.call for p in batch])
        except Exception as exc:  # a broken model must fail its callers, never the consumer loop
            log.exception("batch of %d calls failed", len(batch))
            error = exc if isinstance(exc, MoEError) else MoEError(f"expert batch failed: {exc}")
            outcomes = [error] * len(batch)
        self.batches_run += 1
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, BaseException):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)
