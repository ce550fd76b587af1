"""MicroBatcher: no waiting at idle; in a busy period a batch stays open while requests keep arriving."""

from __future__ import annotations

import asyncio
import threading
import time

from router.batching import MicroBatcher


class Recorder:
    """A batch function that records each batch and can be held, so the test decides what queues up."""

    def __init__(self, run_s: float) -> None:
        self.batches: list[list[str]] = []
        self.started: list[float] = []
        self.gate = threading.Event()
        self.gate.set()
        self.run_s = run_s

    def __call__(self, items: list[str]) -> list[str]:
        self.started.append(time.perf_counter())
        self.gate.wait(timeout=10)
        self.batches.append(list(items))
        if len(items) > 1:
            time.sleep(self.run_s)  # a batch that takes a while, as an encoder call does
        return [item.upper() for item in items]


def test_a_lone_request_at_idle_runs_at_once() -> None:
    run = Recorder(run_s=0.0)
    batcher = MicroBatcher(run, quiet_s=1.0, hold_share=1.0)

    async def main() -> float:
        submitted = time.perf_counter()
        assert await batcher.submit("a") == "A"
        return run.started[0] - submitted

    try:
        assert asyncio.run(main()) < 0.5  # a held batch would have waited the whole quiet second
    finally:
        batcher.close()
    assert run.batches == [["a"]]


def test_in_a_busy_period_a_batch_waits_for_requests_that_keep_coming() -> None:
    run = Recorder(run_s=0.6)
    batcher = MicroBatcher(run, quiet_s=0.4, hold_share=1.0)

    async def main() -> None:
        run.gate.clear()
        first = asyncio.ensure_future(batcher.submit("a"))  # runs alone, held at the gate
        while not run.started:
            await asyncio.sleep(0.005)
        pair = [asyncio.ensure_future(batcher.submit(x)) for x in ("b", "c")]  # queue behind it
        await asyncio.sleep(0.05)
        run.gate.set()
        assert await first == "A" and await asyncio.gather(*pair) == ["B", "C"]
        # Right after a batch of two: d comes at once, e 0.1 s later (inside the 0.4 s quiet period).
        d = asyncio.ensure_future(batcher.submit("d"))
        await asyncio.sleep(0.1)
        assert await asyncio.gather(d, batcher.submit("e")) == ["D", "E"]

    try:
        asyncio.run(main())
    finally:
        batcher.close()
    assert run.batches == [["a"], ["b", "c"], ["d", "e"]]


def test_a_busy_period_ends_once_the_batcher_has_idled_longer_than_its_last_batch_ran() -> None:
    run = Recorder(run_s=0.1)
    batcher = MicroBatcher(run, quiet_s=1.0, hold_share=10.0)

    async def main() -> float:
        run.gate.clear()
        first = asyncio.ensure_future(batcher.submit("a"))
        while not run.started:
            await asyncio.sleep(0.005)
        pair = [asyncio.ensure_future(batcher.submit(x)) for x in ("b", "c")]
        await asyncio.sleep(0.05)
        run.gate.set()
        await asyncio.gather(first, *pair)  # a batch of two that ran 0.1 s: a busy period
        await asyncio.sleep(0.3)  # idle for longer than that
        submitted = time.perf_counter()
        assert await batcher.submit("d") == "D"
        return run.started[-1] - submitted

    try:
        assert asyncio.run(main()) < 0.5  # not held for the quiet second
    finally:
        batcher.close()
    assert run.batches == [["a"], ["b", "c"], ["d"]]


def test_several_workers_run_batches_side_by_side_and_stop_together() -> None:
    run = Recorder(run_s=0.0)
    started: list[str] = []
    batcher = MicroBatcher(run, workers=2, on_worker_start=lambda: started.append(threading.current_thread().name))

    async def main() -> None:
        run.gate.clear()
        first = asyncio.ensure_future(batcher.submit("a"))  # one worker takes it and is held at the gate
        while not run.started:
            await asyncio.sleep(0.005)
        second = asyncio.ensure_future(batcher.submit("b"))  # the other worker takes this one
        while len(run.started) < 2:
            await asyncio.sleep(0.005)
        assert run.batches == []  # b started while a was still held: one worker alone would wait for a
        run.gate.set()
        assert await asyncio.gather(first, second) == ["A", "B"]

    try:
        asyncio.run(main())
        assert sorted(started) == ["moe-batcher-0", "moe-batcher-1"]
    finally:
        batcher.close()
    assert not any(t.name.startswith("moe-batcher-") for t in threading.enumerate())
    assert asyncio.run(_submit(batcher, "c")) == "C"  # a closed batcher starts afresh on the next request
    batcher.close()


async def _submit(batcher: MicroBatcher[str, str], item: str) -> str:
    return await batcher.submit(item)
