"""Routing latency and throughput against the bare encoder, measured in one run.

1. One query at a time, in one process: router.route(q) vs encoder.encode([q]) on the same texts,
   interleaved so machine noise hits both alike. Target: median ratio <= 1.1.
2. 64 concurrent callers of router.aroute in one process (no HTTP): what the micro-batcher itself costs.
3. 64 concurrent HTTP clients on POST /v1/route (a real uvicorn server on loopback) vs the encoder's
   batched throughput (batches of 64 of the same texts). Target: ratio >= 0.9. Concurrent requests
   are micro-batched. The load comes from `wrk` (C, 64 connections, 10 s) when it is installed, else
   from an httpx client in a separate process; on 2 cores the Python client itself eats most of a
   core, so it measures the client as much as the server (about 80 vs 200 requests/s here).

The encoder's batched throughput (batches of 64 of the same texts, before and after the HTTP run) is
measured three ways, and `throughput_ratio` divides by the fastest:
- `encoder`: one `Encoder.encode` call per batch, on the model thread (the traced graph, all cores);
- `library`: one `SentenceTransformer.encode` call per batch (what the encoder was before the graph);
- `lanes`: each batch split over the router's lanes, each lane at one torch thread (what serving does).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from routing_common import emit, read_jsonl

from core.compute import compute, one_torch_thread
from core.db import make_engine, make_session_factory, migrate, session_scope
from core.settings import Settings
from experts.repository import ExpertRepository
from experts.schemas import ExpertSpec
from router.data import Example
from router.encoder import ENCODE_CHUNK, Encoder
from router.evaluation import experts_from_examples
from router.router import Router

CLIENT = r"""
import asyncio, json, sys, time, httpx
url, texts, clients = sys.argv[1], json.loads(sys.stdin.read()), int(sys.argv[2])
async def main():
    queue = list(texts)
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
        async def worker():
            while queue:
                r = await http.post(url, json={"query": queue.pop()})
                assert r.status_code == 200, r.text
        await http.post(url, json={"query": "warm up"})
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        print(json.dumps({"seconds": time.perf_counter() - start}))
asyncio.run(main())
"""


def registry(per_domain: int = 40) -> list[ExpertSpec]:
    rows = [r for r in read_jsonl("clinc_dev.jsonl") if r["domain"] != "oos"]
    examples = [Example(r["text"], r["domain"], r["domain"]) for r in rows]
    return [
        ExpertSpec(name=e.name, kind="litellm", litellm_model=f"openai/{e.name}", exemplars=e.exemplars[:per_domain])
        for e in experts_from_examples(examples)
    ]


def registry_router(encoder: Encoder) -> Router:
    router = Router(encoder, lanes=os.cpu_count() or 1)
    router.refresh(experts_from_examples([Example(t, s.name, s.name) for s in registry() for t in s.exemplars]), "b")
    return router


def single_query(encoder: Encoder, router: Router, texts: list[str]) -> dict[str, float]:
    bare, routed = [], []
    for text in texts[:10]:
        router.route(text), encoder.encode([text])  # warm-up
    for text in texts:
        t0 = time.perf_counter()
        encoder.encode([text], batch_size=1)
        t1 = time.perf_counter()
        router.route(text)
        t2 = time.perf_counter()
        bare.append(t1 - t0)
        routed.append(t2 - t1)
    return {
        "encoder_p50_ms": statistics.median(bare) * 1e3,
        "route_p50_ms": statistics.median(routed) * 1e3,
        "ratio": statistics.median(routed) / statistics.median(bare),
    }


def in_process_throughput(router: Router, texts: list[str], clients: int) -> float:
    async def run() -> float:
        queue = list(texts)

        async def caller() -> None:
            while queue:
                await router.aroute(queue.pop())

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(clients)))
        return len(texts) / (time.perf_counter() - start)

    return asyncio.run(run())


def batched_throughput(encode: Callable[[list[str]], object], texts: list[str], batch: int = 64) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        encode(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - start)


def baselines(encoder: Encoder, lanes: ThreadPoolExecutor, n_lanes: int) -> dict[str, Callable[[list[str]], object]]:
    def library(batch: list[str]) -> object:
        return compute(encoder.model.encode, batch, batch_size=ENCODE_CHUNK, normalize_embeddings=True)

    def in_lanes(batch: list[str]) -> object:
        def lane(part: list[str]) -> object:
            with one_torch_thread():
                return encoder.encode_in_lane(part)

        return list(lanes.map(lane, [batch[i::n_lanes] for i in range(n_lanes)]))

    return {"encoder": encoder.encode, "library": library, "lanes": in_lanes}


def http_throughput(texts: list[str], clients: int) -> tuple[str, float]:
    from api.app import create_app
    from api.serving import ThreadedServer

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))  # type: ignore[call-arg]
        settings.ensure_dirs()
        migrate(settings.sqlalchemy_url)
        engine = make_engine(settings.sqlalchemy_url)
        with session_scope(make_session_factory(engine)) as session:
            repo = ExpertRepository(session, settings.model_dir)
            for spec in registry():
                repo.add(spec)
        engine.dispose()
        with ThreadedServer(create_app(settings)) as server:
            if shutil.which("wrk"):
                return "wrk", wrk_throughput(f"{server.url}/v1/route", texts, clients, Path(tmp))
            out = subprocess.run(
                [sys.executable, "-c", CLIENT, f"{server.url}/v1/route", str(clients)],
                input=json.dumps(texts), capture_output=True, text=True, check=True,
            )  # fmt: skip
    return "httpx", len(texts) / json.loads(out.stdout)["seconds"]


WRK_SCRIPT = """
local texts = {}
for line in io.lines(os.getenv("MOE_WRK_TEXTS")) do texts[#texts + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, '{"query": ' .. texts[(i % #texts) + 1] .. '}')
end
response = function(status, headers, body)
  if status ~= 200 then error("status " .. status .. ": " .. body) end
end
"""


def wrk_throughput(url: str, texts: list[str], clients: int, tmp: Path, seconds: int = 10) -> float:
    (tmp / "texts.txt").write_text("\n".join(json.dumps(t) for t in texts) + "\n")
    (tmp / "post.lua").write_text(WRK_SCRIPT)
    command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "-s", str(tmp / "post.lua"), url]
    out = subprocess.run(
        command, env={**os.environ, "MOE_WRK_TEXTS": str(tmp / "texts.txt")}, capture_output=True, text=True, check=True
    )
    if "Non-2xx" in out.stdout:
        raise RuntimeError(f"wrk saw failed requests:\n{out.stdout}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]


def main() -> None:
    started = time.perf_counter()
    texts = [r["text"] for r in read_jsonl("clinc_val.jsonl")]
    encoder = Encoder()
    router = registry_router(encoder)
    single = single_query(encoder, router, texts[:200])
    load = texts[:1024]
    n_lanes = os.cpu_count() or 1
    with ThreadPoolExecutor(n_lanes) as pool:
        ways = baselines(encoder, pool, n_lanes)
        before = {name: batched_throughput(encode, load) for name, encode in ways.items()}
        in_process = in_process_throughput(router, load, clients=64)
        client, served = http_throughput(load, clients=64)
        after = {name: batched_throughput(encode, load) for name, encode in ways.items()}  # bracket the HTTP run
    batched = {name: (before[name] + after[name]) / 2 for name in ways}
    baseline = max(batched.values())
    emit({
        "bench": "routing_latency",
        "single_query": single,
        "single_query_ok": single["ratio"] <= 1.1,
        "encoder_batched_qps": batched,
        "baseline": max(batched, key=batched.__getitem__),
        "in_process_64_callers_qps": in_process,
        "in_process_ratio": in_process / baseline,
        "http_64_clients_qps": served,
        "load_generator": client,
        "throughput_ratio": served / baseline,
        "throughput_ratio_by_baseline": {name: served / qps for name, qps in batched.items()},
        "throughput_ok": served / baseline >= 0.9,
        "seconds": round(time.perf_counter() - started, 1),
    })  # fmt: skip


if __name__ == "__main__":
    main()
