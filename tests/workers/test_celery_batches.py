"""Reliability with real Redis and real `moe worker` processes: kill -9 a worker, restart Redis, same answers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agents.batch import BatchService
from agents.runtime import Runtime
from api.routes.batches import parse_input
from core.db import make_engine, make_session_factory, migrate, session_scope
from core.settings import Settings
from experts.bundled import DEFAULT_BASE, check_base_model
from experts.generation import ExpertCall
from experts.repository import ExpertRepository
from experts.schemas import ExpertKind, ExpertSpec
from tests.workers.conftest import EchoServer, PrivateRedis, Workers
from workers.celery_executor import CeleryDispatcher
from workers.files import FileStore
from workers.models import BatchResult
from workers.wire import request_from_json

pytestmark = pytest.mark.services
QUEUES = "moe.litellm.echo,moe.local.smollm2-135m-instruct"


def _registry(tmp_path: Path, base: Settings, redis_url: str, echo_url: str) -> Settings:
    """Its own registry (a remote `echo` expert and `math-lora`), so the shared one's routing is untouched."""
    s = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, celery_visibility_timeout_s=4.0, batch_poll_s=0.2,
        batch_chunk_size=32, remote_retry_backoff_s=0.2, seed_data_dir=base.seed_data_dir,
        **{"MOE_MODEL_DIR": base.model_dir},
    )  # fmt: skip
    s.data_dir.mkdir(parents=True)
    migrate(s.sqlalchemy_url)
    engine = make_engine(s.sqlalchemy_url)
    with session_scope(make_session_factory(engine)) as session:
        repo = ExpertRepository(session, s.model_dir, check_base_model)
        repo.add(ExpertSpec(name="echo", kind=ExpertKind.litellm, litellm_model="openai/echo", api_base=echo_url))
        adapter = base.model_dir / "adapters" / "math-lora"
        repo.add(ExpertSpec(name="math-lora", kind=ExpertKind.lora, base_model=DEFAULT_BASE, adapter_path=str(adapter)))
    engine.dispose()
    return s


def _jsonl(n: int, model: str, max_tokens: int = 4, flaky: int | None = None) -> str:
    rows = []
    for i in range(n):
        text = f"Question {i}: what is {i} + 1?" + (" flaky" if i == flaky else "")
        body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens}
        rows.append(
            json.dumps({"custom_id": f"line-{i}", "method": "POST", "url": "/v1/chat/completions", "body": body})
        )
    return "\n".join(rows)


def _new_batch(service: BatchService, content: str) -> str:
    source = FileStore(service.runtime.sessions).create("batch", "in.jsonl", content)
    items, refused = parse_input(content, service.runtime.settings, {}.get)
    assert not refused
    return service.store.create(source.id, "/v1/chat/completions", "24h", items, []).id


def _stored(service: BatchService, batch_id: str) -> int:
    with session_scope(service.runtime.sessions) as session:
        query = select(func.count()).select_from(BatchResult).where(BatchResult.batch_id == batch_id)
        return int(session.scalar(query) or 0)


async def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _output(service: BatchService, batch_id: str) -> list[dict]:
    batch = service.store.get(batch_id)
    assert batch.status == "completed", batch.status
    assert batch.error_file_id is None
    content = FileStore(service.runtime.sessions).get(batch.output_file_id).content
    return [json.loads(line) for line in content.splitlines()]


def _answer(line: dict) -> str:
    return line["response"]["body"]["choices"][0]["message"]["content"]


def test_killed_worker_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, settings: Settings, redis_url: str, echo_server: EchoServer, workers: Callable[[Settings], Workers]
) -> None:
    s = _registry(tmp_path, settings, redis_url, echo_server.url)
    service = BatchService(Runtime.build(s))
    assert isinstance(service.dispatcher, CeleryDispatcher)
    echo_server.failures["flaky"] = 3  # line 5 fails three times first: Celery retries it with backoff
    batch_id = _new_batch(service, _jsonl(1000, "echo", flaky=5))
    pool = workers(s)

    async def go() -> int:
        service.start(batch_id)
        first = pool.start(QUEUES)
        await _until(lambda: _stored(service, batch_id) >= 64, 240, "the first worker to store results")
        pool.kill(first)
        at_kill = _stored(service, batch_id)
        pool.start(QUEUES)
        await asyncio.wait_for(service.wait(batch_id), 240)
        return at_kill

    at_kill = asyncio.run(go())
    assert 64 <= at_kill < 1000  # the kill really happened mid-job
    lines = _output(service, batch_id)
    assert [line["custom_id"] for line in lines] == [f"line-{i}" for i in range(1000)]
    assert [_answer(line) for line in lines[:2]] == [
        "echo: Question 0: what is 0 + 1?",
        "echo: Question 1: what is 1 + 1?",
    ]
    assert _answer(lines[5]) == "echo: Question 5: what is 5 + 1? flaky" and echo_server.failures["flaky"] == 0
    assert _stored(service, batch_id) == 1000  # exactly one stored answer per (line, expert)
    assert service.store.counts(batch_id).completed == 1000


def test_batch_survives_a_redis_restart(
    tmp_path: Path,
    settings: Settings,
    private_redis: PrivateRedis,
    echo_server: EchoServer,
    workers: Callable[[Settings], Workers],
) -> None:
    s = _registry(tmp_path, settings, private_redis.url, echo_server.url)
    service = BatchService(Runtime.build(s))
    batch_id = _new_batch(service, _jsonl(1000, "echo"))
    pool = workers(s)

    async def go() -> int:
        service.start(batch_id)
        pool.start(QUEUES)
        await _until(lambda: _stored(service, batch_id) >= 32, 240, "the worker to store results")
        private_redis.stop()  # no persistence: every queued task is gone with it
        at_restart = _stored(service, batch_id)
        await asyncio.sleep(1)
        private_redis.start()
        await asyncio.wait_for(service.wait(batch_id), 240)
        return at_restart

    at_restart = asyncio.run(go())
    assert at_restart < 1000
    assert [line["custom_id"] for line in _output(service, batch_id)] == [f"line-{i}" for i in range(1000)]
    assert service.dispatcher.resends > 0  # the lost chunks were sent again, not waited for forever


def test_same_greedy_answer_alone_online_and_in_a_batch(
    tmp_path: Path, settings: Settings, redis_url: str, echo_server: EchoServer, workers: Callable[[Settings], Workers]
) -> None:
    s = _registry(tmp_path, settings, redis_url, echo_server.url)
    runtime = Runtime.build(s)
    service = BatchService(runtime)
    batch_id = _new_batch(service, _jsonl(3, "math-lora", max_tokens=8))
    workers(s).start(QUEUES)

    async def go() -> str:
        service.start(batch_id)
        await asyncio.wait_for(service.wait(batch_id), 300)
        row = service.store.rows(batch_id)[1]
        call = ExpertCall(runtime.enabled_experts()["math-lora"], request_from_json(row.request))
        online = await asyncio.wait_for(runtime.executor.submit(call), 120)  # through the worker's queue
        await runtime.aclose()
        return online.text

    online = asyncio.run(go())
    row = service.store.rows(batch_id)[1]
    call = ExpertCall(runtime.enabled_experts()["math-lora"], request_from_json(row.request))
    alone = runtime.pool.runner(call.expert).run([call])[0]
    assert isinstance(alone, object) and not isinstance(alone, Exception)
    assert alone.text == online == _answer(_output(service, batch_id)[1])
