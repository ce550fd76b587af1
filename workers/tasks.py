"""Celery tasks: the code a `moe worker` process runs. Models and DB are built once per process."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from typing import Any

from celery import Celery, Task
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_session_factory
from core.errors import UpstreamError
from core.settings import Settings, get_settings
from experts.backends.base import CallOutcome
from experts.backends.pool import BackendPool
from experts.schemas import ExpertKind
from workers.scheduler import BatchCall, execute_chunk
from workers.wire import call_from_json, outcome_to_json

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    settings: Settings
    sessions: sessionmaker[Session]
    pool: BackendPool


@cache
def worker_context() -> WorkerContext:
    """A worker process is long-lived and serves one model per base: build it on the first task, keep it."""
    settings = get_settings()
    sessions = make_session_factory(make_engine(settings.sqlalchemy_url))
    return WorkerContext(
        settings, sessions, BackendPool(settings.model_dir, settings.device, settings.remote_timeout_s)
    )


def is_retryable(kind: ExpertKind, outcome: CallOutcome) -> bool:
    """Only remote experts fail transiently (network, rate limits); a local failure would fail again."""
    return kind == ExpertKind.litellm and isinstance(outcome, UpstreamError)


def _countdown(task: Task, settings: Settings) -> float:
    return settings.remote_retry_backoff_s * (2**task.request.retries)


def run_calls(task: Task, calls: list[dict[str, Any]], done: list[dict[str, Any] | None] | None = None) -> list:
    """Online calls of one micro-batch; retried calls carry the outcomes already obtained in `done`."""
    ctx = worker_context()
    done = done or [None] * len(calls)
    pending = [i for i, d in enumerate(done) if d is None]
    batch = [call_from_json(calls[i]) for i in pending]
    outcomes = ctx.pool.runner(batch[0].expert).run(batch)
    retry = [i for i, c, o in zip(pending, batch, outcomes, strict=True) if is_retryable(c.expert.kind, o)]
    for i, outcome in zip(pending, outcomes, strict=True):
        done[i] = outcome_to_json(outcome)
    if retry and task.request.retries < ctx.settings.remote_max_retries:
        for i in retry:
            done[i] = None
        raise task.retry(kwargs={"calls": calls, "done": done}, countdown=_countdown(task, ctx.settings))
    return done


def run_batch_chunk(task: Task, batch_id: str, calls: list[dict[str, Any]]) -> int:
    """One chunk of a batch job; outcomes go to the DB, keyed so a redelivery overwrites itself."""
    ctx = worker_context()
    chunk = [BatchCall.from_json(c) for c in calls]
    last_try = task.request.retries >= ctx.settings.remote_max_retries
    ran = execute_chunk(
        ctx.pool, ctx.sessions, batch_id, chunk, keep=lambda c, o: last_try or not is_retryable(c.call.expert.kind, o)
    )
    if not last_try and any(is_retryable(c.call.expert.kind, o) for c, o in ran):
        raise task.retry(countdown=_countdown(task, ctx.settings))
    return len(ran)


def register_tasks(app: Celery) -> None:
    app.task(name="moe.run_calls", bind=True)(run_calls)
    app.task(name="moe.run_batch_chunk", bind=True)(run_batch_chunk)
