"""The distributed path: online micro-batches and batch-job chunks become tasks on per-group queues."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import redis
from celery import Celery
from celery.result import AsyncResult
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.errors import UpstreamError
from experts.backends.base import CallOutcome
from experts.backends.pool import BackendPool
from experts.generation import ExpertCall
from workers.celery_app import RUN_BATCH_CHUNK, RUN_CALLS
from workers.dispatch import ProgressHook, StopCheck
from workers.microbatch import MicroBatcher
from workers.results import result_keys
from workers.scheduler import BatchCall, chunked, queue_name
from workers.wire import call_to_json, outcome_from_json

log = logging.getLogger(__name__)


class CeleryExecutor(MicroBatcher):
    """Concurrent calls are micro-batched here, then one task per batch goes to the group's queue."""

    def __init__(self, app: Celery, window_ms: float = 8.0, max_batch: int = 32, timeout_s: float = 600.0) -> None:
        super().__init__(lambda call: BackendPool.batch_key(call.expert), self._run_remote, window_ms, max_batch)
        self.app = app
        self.timeout_s = timeout_s

    async def _run_remote(self, calls: Sequence[ExpertCall]) -> list[CallOutcome]:
        queue = queue_name(BackendPool.batch_key(calls[0].expert))
        result = self.app.send_task(RUN_CALLS, kwargs={"calls": [call_to_json(c) for c in calls]}, queue=queue)
        try:
            payload = await asyncio.to_thread(result.get, timeout=self.timeout_s)
        except Exception as exc:  # the broker, the worker or the result store failed: the callers get a 502
            raise UpstreamError(f"worker queue '{queue}' failed: {exc}") from exc
        return [outcome_from_json(o) for o in payload]


def redis_run_id(url: str) -> str | None:
    """Redis's run id changes on every restart: a new one means queued tasks may be gone."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return str(client.info("server")["run_id"])
        finally:
            client.close()
    except redis.RedisError:
        return None


class CeleryDispatcher:
    """Sends every chunk as a task, then watches the DB (the source of truth) until all outcomes are in.

    Chunks whose outcomes are still missing are sent again when Redis restarted (its queues may be
    empty now) or when nothing progressed for `stall_s`; stored outcomes make a resend cheap and harmless.
    """

    def __init__(
        self,
        app: Celery,
        sessions: sessionmaker[Session],
        redis_url: str,
        chunk_size: int = 32,
        poll_s: float = 0.5,
        stall_s: float = 600.0,
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.redis_url = redis_url
        self.chunk_size = chunk_size
        self.poll_s = poll_s
        self.stall_s = stall_s
        self.resends = 0

    async def run(
        self, batch_id: str, groups: dict[str, list[BatchCall]], should_stop: StopCheck, on_progress: ProgressHook
    ) -> None:
        chunks = [(queue_name(g), c) for g, calls in groups.items() for c in chunked(calls, self.chunk_size)]
        epoch = await asyncio.to_thread(redis_run_id, self.redis_url)
        sent = {i: self._send(batch_id, *chunks[i]) for i in range(len(chunks))}
        done_count, last_change = -1, time.monotonic()
        while True:
            await asyncio.sleep(self.poll_s)
            if await should_stop():
                self._revoke(list(sent.values()))
                return
            missing = await asyncio.to_thread(self._missing, batch_id, chunks)
            if not missing:
                return
            done = sum(len(c) for _, c in chunks) - sum(len(chunks[i][1]) for i in missing)
            if done != done_count:
                done_count, last_change = done, time.monotonic()
                await on_progress()
            run_id = await asyncio.to_thread(redis_run_id, self.redis_url)
            if run_id is None:
                continue  # Redis is down: the workers and this loop wait for it alike
            if run_id != epoch or time.monotonic() - last_change > self.stall_s:
                log.warning("batch %s: resending %d chunks (redis restarted or stalled)", batch_id, len(missing))
                epoch, last_change = run_id, time.monotonic()
                for i in missing:
                    sent[i] = self._send(batch_id, *chunks[i])
                    self.resends += 1

    async def aclose(self) -> None:
        return None

    def _send(self, batch_id: str, queue: str, chunk: list[BatchCall]) -> AsyncResult:
        kwargs = {"batch_id": batch_id, "calls": [c.to_json() for c in chunk]}
        return self.app.send_task(RUN_BATCH_CHUNK, kwargs=kwargs, queue=queue)

    def _missing(self, batch_id: str, chunks: list[tuple[str, list[BatchCall]]]) -> list[int]:
        with session_scope(self.sessions) as session:
            done = result_keys(session, batch_id)
        return [i for i, (_, chunk) in enumerate(chunks) if any(c.key not in done for c in chunk)]

    def _revoke(self, results: list[AsyncResult]) -> None:
        try:
            self.app.control.revoke([r.id for r in results])
        except Exception:  # revoking is an optimisation: workers also skip chunks of a stopped batch
            log.warning("could not revoke batch tasks", exc_info=True)
