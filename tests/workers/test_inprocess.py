from __future__ import annotations

import asyncio

from agents.runtime import Runtime
from core.settings import Settings
from experts.generation import ExpertCall, GenerationRequest
from workers.inprocess import InProcessExecutor


def test_concurrent_calls_share_batches_and_get_their_own_answers(settings: Settings) -> None:
    runtime = Runtime.build(settings)
    experts = runtime.enabled_experts()
    names = ["smollm2", "math-lora", "knowledge-lora"] * 3
    calls = [
        ExpertCall(experts[n], GenerationRequest([{"role": "user", "content": f"Give me fact number {i}."}], 8))
        for i, n in enumerate(names)
    ]

    async def go() -> tuple[list[str], list[str], int]:
        executor = InProcessExecutor(runtime.pool, window_ms=50, max_batch=32)
        together = await asyncio.gather(*(executor.submit(c) for c in calls))
        batches = executor.batches_run
        alone = [await executor.submit(c) for c in calls]
        await executor.aclose()
        return [r.text for r in together], [r.text for r in alone], batches

    together, alone, batches = asyncio.run(go())
    assert together == alone
    # Nine calls for three adapters of one base: one shared forward pass, not nine.
    assert batches == 1
