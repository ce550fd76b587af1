"""One thread runs the process's model work (torch): generation steps, encoding, fitting, loading.

torch's CPU build spreads each op over OpenMP (libgomp) threads, and libgomp keeps one team of
worker threads per calling thread. While a second team exists, libgomp stops spin-waiting between
parallel regions, so every op pays a sleep and a wake-up: on this project's 2-core machine a
[16, 576] x [576, 1536] matmul ran 35% slower from a second thread than from the first, and a batch
job's generation ran 15-25% below the same engine driven from one thread. Sending all model work to
one long-lived thread keeps one team, whichever thread (event loop, worker pool, encoder batcher,
Celery task) asks for it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_local = threading.local()


def _mark_compute_thread() -> None:
    _local.compute = True


def _new_executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="moe-compute", initializer=_mark_compute_thread)


_executor = _new_executor()


def _reset_after_fork() -> None:
    # A forked child (Celery's prefork pool) inherits the executor but not its thread.
    global _executor
    _executor = _new_executor()


os.register_at_fork(after_in_child=_reset_after_fork)


def on_compute_thread() -> bool:
    return bool(getattr(_local, "compute", False))


def compute(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `fn` on the compute thread and wait for its result (at once when already there)."""
    if on_compute_thread():
        return fn(*args, **kwargs)
    return _executor.submit(fn, *args, **kwargs).result()


async def acompute(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`compute` for coroutines: the event loop keeps serving while the compute thread works."""
    return await asyncio.wrap_future(_executor.submit(fn, *args, **kwargs))


def on_compute(fn: Callable[P, T]) -> Callable[P, T]:
    """Decorator: every call of `fn` runs on the compute thread."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return compute(fn, *args, **kwargs)

    return wrapper
