"""How a batch's grouped calls get run: the interface, and the in-process implementation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from experts.backends.pool import BackendPool
from workers.scheduler import BatchCall, chunked, execute_chunk

StopCheck = Callable[[], Awaitable[bool]]
ProgressHook = Callable[[], Awaitable[None]]


class BatchDispatcher(Protocol):
    async def run(
        self, batch_id: str, groups: dict[str, list[BatchCall]], should_stop: StopCheck, on_progress: ProgressHook
    ) -> None:
        """Return once every call has a stored outcome, or soon after `should_stop` says so."""

    async def aclose(self) -> None: ...


class InProcessDispatcher:
    """Runs groups one after another in this process, each as full chunks on its model."""

    def __init__(self, pool: BackendPool, sessions: sessionmaker[Session], chunk_size: int = 32) -> None:
        self.pool = pool
        self.sessions = sessions
        self.chunk_size = chunk_size

    async def run(
        self, batch_id: str, groups: dict[str, list[BatchCall]], should_stop: StopCheck, on_progress: ProgressHook
    ) -> None:
        for calls in groups.values():
            for chunk in chunked(calls, self.chunk_size):
                if await should_stop():
                    return
                await asyncio.to_thread(execute_chunk, self.pool, self.sessions, batch_id, chunk)
                await on_progress()

    async def aclose(self) -> None:
        return None
