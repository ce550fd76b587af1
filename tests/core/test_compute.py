"""The model thread: calls from any thread run on one long-lived thread, nest without deadlock, raise as usual."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.compute import compute, on_compute, on_compute_thread


def _where() -> str:
    return threading.current_thread().name


def test_calls_from_many_threads_run_on_one_thread() -> None:
    with ThreadPoolExecutor(4) as pool:
        names = set(pool.map(lambda _: compute(_where), range(16)))
    assert len(names) == 1 and next(iter(names)).startswith("moe-compute")
    assert not on_compute_thread()


def test_nested_calls_run_in_place() -> None:
    @on_compute
    def outer() -> tuple[str, str, bool]:
        return _where(), compute(_where), on_compute_thread()

    first, nested, flagged = outer()
    assert first == nested and flagged


def test_exceptions_reach_the_caller() -> None:
    def fail() -> None:
        raise ValueError("bad shapes")

    with pytest.raises(ValueError, match="bad shapes"):
        compute(fail)
    assert compute(lambda: 7) == 7  # the thread survives a failed call
