"""Overhead of the LangGraph query graph over a direct executor call, k = 1. Prints ONE JSON line.

Baseline and candidate run interleaved in one process on the same warm model: `executor.submit`
of the expert call (baseline) vs `QueryGraph.run` naming that expert (route -> call_experts ->
aggregate). Two estimates of the same overhead: the median of the paired differences
(graph - direct; machine noise on a ~300 ms model call makes it jumpy on a busy machine), and,
within each graph run, its wall time minus the executor call it made (`in_run`, exact
accounting, used for the pass/fail against the 5 ms p50 target). Also reported, for information:
the routed path (`moe:auto`, k = 1), whose extra time is mostly the router's encoder.

    MOE_MODEL_DIR=.cache/test-models .venv/bin/python bench/agents_overhead.py [--pairs 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core.env  # noqa: E402, F401  (offline defaults before heavy imports)
from agents.graph import QueryGraph  # noqa: E402
from agents.runtime import Runtime  # noqa: E402
from core.db import make_engine, make_session_factory, migrate, session_scope  # noqa: E402
from core.settings import Settings  # noqa: E402
from experts.bundled import DEFAULT_BASE, base_model_path, check_base_model  # noqa: E402
from experts.generation import ExpertCall, GenerationRequest  # noqa: E402
from experts.repository import ExpertRepository  # noqa: E402
from experts.schemas import ExpertKind, ExpertSpec  # noqa: E402

TARGET_MS = 5.0
EXPERT = "smollm2"


def one_expert_registry(data_dir: Path) -> Settings:
    # The models are converted once under the configured model dir (MOE_MODEL_DIR); the registry is throwaway.
    settings = Settings(data_dir=data_dir, MOE_MODEL_DIR=str(Settings().model_dir))  # type: ignore[call-arg]
    settings.ensure_dirs()
    migrate(settings.sqlalchemy_url)
    base_model_path(DEFAULT_BASE, settings.model_dir)
    engine = make_engine(settings.sqlalchemy_url)
    with session_scope(make_session_factory(engine)) as session:
        repo = ExpertRepository(session, settings.model_dir, check_base_model)
        repo.add(ExpertSpec(name=EXPERT, kind=ExpertKind.local, base_model=DEFAULT_BASE, exemplars=["Say hello."]))
    engine.dispose()
    return settings


def p50(values: list[float]) -> float:
    return round(statistics.median(values), 3)


async def measure(runtime: Runtime, pairs: int) -> dict[str, object]:
    graph = QueryGraph(runtime)
    request = GenerationRequest(messages=[{"role": "user", "content": "Say hello."}], max_tokens=1)
    expert = runtime.enabled_experts()[EXPERT]

    async def direct() -> float:
        t0 = time.perf_counter()
        await runtime.executor.submit(ExpertCall(expert, request))
        return (time.perf_counter() - t0) * 1e3

    inside: list[float] = []  # per graph run: wall time minus the executor call it made

    async def via_graph(**kwargs: object) -> float:
        t0 = time.perf_counter()
        state = await graph.run(request, **kwargs)  # type: ignore[arg-type]
        wall = (time.perf_counter() - t0) * 1e3
        if kwargs:
            inside.append(wall - state["answers"][0].elapsed_ms)
        return wall

    for _ in range(5):  # warm caches, the engine, the compiled graph
        await direct(), await via_graph(expert=EXPERT), await via_graph()
    inside.clear()
    base, named, routed = [], [], []
    for i in range(pairs):
        # Alternate which half goes first so neither always gets the warmer cache.
        if i % 2:
            b, n, r = await direct(), await via_graph(expert=EXPERT), await via_graph()
        else:
            r, n, b = await via_graph(), await via_graph(expert=EXPERT), await direct()
        base.append(b), named.append(n), routed.append(r)
    overhead = [n - b for n, b in zip(named, base, strict=True)]
    routed_overhead = [r - b for r, b in zip(routed, base, strict=True)]
    return {
        "bench": "agents_overhead",
        "pairs": pairs,
        "direct_call_ms_p50": p50(base),
        "graph_ms_p50": p50(named),
        "graph_overhead_ms_p50": p50(overhead),
        "graph_overhead_ratio": round(statistics.median(named) / statistics.median(base), 3),
        "graph_overhead_in_run_ms_p50": p50(inside),
        "routed_graph_ms_p50": p50(routed),
        "routed_overhead_ms_p50": p50(routed_overhead),
        "target_ms": TARGET_MS,
        "pass": statistics.median(inside) <= TARGET_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="moe-bench-") as tmp:
        runtime = Runtime.build(one_expert_registry(Path(tmp)))

        async def go() -> dict[str, object]:
            try:
                return await measure(runtime, args.pairs)
            finally:
                await runtime.aclose()

        print(json.dumps(asyncio.run(go())))


if __name__ == "__main__":
    main()
