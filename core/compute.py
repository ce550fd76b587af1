"""One thread runs the process's model work (torch): generation steps, encoding, fitting, loading.

torch's CPU build spreads each op over OpenMP (libgomp) threads, and libgomp keeps one team of
worker threads per calling thread. While a second team exists, libgomp stops spin-waiting between
parallel regions, so every op pays a sleep and a wake-up: on this project's 2-core machine a
[16, 576] x [576, 1536] matmul ran 35% slower from a second thread than from the first, and a batch
job's generation ran 15-25% below the same engine driven from one thread. Sending all model work to
one long-lived thread keeps one team, whichever thread (event loop, worker pool, encoder batcher,
Celery task) asks for it.

The exception is routing lanes (router.router): under load, big routing batches run in several lane
threads at once, each at one torch thread, so no lane starts a team of its own (`one_torch_thread`).
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
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


_one_thread_lock = threading.Lock()
_one_thread_users = 0
_saved_threads = 1


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch runs each op on one thread while any such block runs, in every thread of the process:
    torch's thread count is process-wide, so it is dropped when the first block starts and restored
    when the last one ends. Several threads inside such blocks run side by side, one core each."""
    global _one_thread_users, _saved_threads
    import torch

    with _one_thread_lock:
        if _one_thread_users == 0:
            _saved_threads = torch.get_num_threads()
        torch.set_num_threads(1)  # in every entering thread: OpenMP keeps a thread count per thread too
        _one_thread_users += 1
    try:
        yield
    finally:
        with _one_thread_lock:
            _one_thread_users -= 1
            if _one_thread_users == 0:
                torch.set_num_threads(_saved_threads)


def one_thread_blocks() -> int:
    """How many `one_torch_thread` blocks run now."""
    return _one_thread_users
