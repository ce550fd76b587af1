"""The embedded executor: micro-batches concurrent calls per model inside the server process."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from experts.backends.base import CallOutcome
from experts.backends.pool import BackendPool
from experts.generation import ExpertCall
from workers.microbatch import MicroBatcher


class InProcessExecutor(MicroBatcher):
    """Calls for any adapter of one base share a forward pass (the pool's batch key)."""

    def __init__(self, pool: BackendPool, window_ms: float = 8.0, max_batch: int = 32) -> None:
        super().__init__(lambda call: pool.batch_key(call.expert), self._run_here, window_ms, max_batch)
        self.pool = pool

    async def _run_here(self, calls: Sequence[ExpertCall]) -> list[CallOutcome]:
        return await asyncio.to_thread(self.pool.runner(calls[0].expert).run, calls)
