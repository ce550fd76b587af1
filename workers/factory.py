"""Pick the implementation: in-process by default, Celery when MOE_REDIS_URL is set."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from experts.backends.pool import BackendPool
from workers.dispatch import BatchDispatcher, InProcessDispatcher
from workers.executor import Executor
from workers.inprocess import InProcessExecutor


def make_executor(pool: BackendPool, settings: Settings) -> Executor:
    if settings.redis_url:
        from workers.celery_app import make_celery
        from workers.celery_executor import CeleryExecutor

        timeout = settings.remote_timeout_s * (settings.remote_max_retries + 1) + 60
        return CeleryExecutor(make_celery(settings), settings.batch_window_ms, settings.max_batch_size, timeout)
    return InProcessExecutor(pool, settings.batch_window_ms, settings.max_batch_size)


def make_dispatcher(pool: BackendPool, sessions: sessionmaker[Session], settings: Settings) -> BatchDispatcher:
    if settings.redis_url:
        from workers.celery_app import make_celery
        from workers.celery_executor import CeleryDispatcher

        return CeleryDispatcher(
            make_celery(settings),
            sessions,
            settings.redis_url,
            settings.batch_chunk_size,
            settings.batch_poll_s,
            stall_s=max(60.0, 2 * settings.celery_visibility_timeout_s),
        )
    return InProcessDispatcher(pool, sessions, settings.batch_chunk_size)
