"""The Celery app: Redis broker and result store, late acks, one queue per expert group."""

from __future__ import annotations

import uuid

from celery import Celery

from core.settings import Settings

DEFAULT_QUEUE = "moe.default"
RUN_CALLS = "moe.run_calls"
RUN_BATCH_CHUNK = "moe.run_batch_chunk"


def make_celery(settings: Settings) -> Celery:
    if not settings.redis_url:
        raise ValueError("the Celery executor needs MOE_REDIS_URL")
    app = Celery("moe", broker=settings.redis_url, backend=settings.redis_url)
    visibility = settings.celery_visibility_timeout_s
    app.conf.update(
        # A task is acknowledged only after it ran: a worker killed mid-task leaves it for another worker.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=DEFAULT_QUEUE,
        result_expires=3600,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={
            # Unacked tasks of a dead worker become visible again after this long; sweep often enough to notice.
            "visibility_timeout": visibility,
            "unacked_restore_interval": max(1, min(10, int(visibility / 4))),
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
    )
    from workers.tasks import register_tasks

    register_tasks(app)
    return app


def worker_argv(queues: list[str], loglevel: str = "INFO") -> list[str]:
    """`celery worker` arguments: one task at a time per process (the model batches inside the task)."""
    return [
        "worker",
        "--queues", ",".join(queues),
        "--pool", "solo",
        "--loglevel", loglevel,
        "--hostname", f"moe-{uuid.uuid4().hex[:8]}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
