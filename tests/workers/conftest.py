"""Real Redis (a dedicated DB number, flushed per test), a private redis-server, real `moe worker` processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from openai.types.chat import ChatCompletion

from api.serving import ThreadedServer, free_port
from core.settings import REPO_ROOT, Settings
from tests.conftest import _service_unavailable

TEST_REDIS_URL = os.environ.get("MOE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture()
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        _service_unavailable(f"Redis ({exc.__class__.__name__})")
    yield TEST_REDIS_URL
    client.flushdb()
    client.close()


class PrivateRedis:
    """A redis-server of our own on a free port, so a test may restart it without touching the shared one."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.workdir)]  # fmt: skip
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@pytest.fixture()
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        _service_unavailable("redis-server (binary)")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


class Workers:
    """`moe worker` subprocesses with the test's settings in their environment."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, queues: str) -> subprocess.Popen[bytes]:
        s = self.settings
        env = {**os.environ, "MOE_DATA_DIR": str(s.data_dir), "MOE_MODEL_DIR": str(s.model_dir),
               "MOE_DATABASE_URL": s.sqlalchemy_url, "MOE_REDIS_URL": str(s.redis_url),
               "MOE_CELERY_VISIBILITY_TIMEOUT_S": str(s.celery_visibility_timeout_s),
               "PYTHONPATH": str(REPO_ROOT)}  # fmt: skip
        log = open(self.log_dir / f"worker-{len(self.processes)}.log", "wb")  # noqa: SIM115  (closed with the process)
        argv = [sys.executable, "-c", "from api.cli import app; app()", "worker", "--queues", queues,
                "--loglevel", "WARNING"]  # fmt: skip
        process = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture()
def workers(tmp_path: Path) -> Iterator[Callable[[Settings], Workers]]:
    started: list[Workers] = []

    def make(settings: Settings) -> Workers:
        pool = Workers(settings, tmp_path)
        started.append(pool)
        return pool

    yield make
    for pool in started:
        pool.stop_all()


def echo_app(delay_s: float, failures: dict[str, int]) -> FastAPI:
    """An OpenAI-compatible server answering deterministically from the prompt, with a little latency.

    Its lines are cheap, so a 1,000-line job exercises the queue and the workers rather than a CPU
    generator (the bundled model needs ~20 s per 32-row chunk on this machine). A prompt containing a
    key of `failures` gets HTTP 500 that many times first, for the retry path.
    """
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def complete(body: dict[str, Any]) -> Any:
        prompt = body["messages"][-1]["content"]
        for key, left in failures.items():
            if key in prompt and left > 0:
                failures[key] = left - 1
                return JSONResponse({"error": {"message": "try again", "type": "server_error"}}, status_code=500)
        await asyncio.sleep(delay_s)
        words = len(prompt.split())
        message = {"role": "assistant", "content": f"echo: {prompt}"}
        answer = ChatCompletion(
            id="chatcmpl-echo",
            object="chat.completion",
            created=0,
            model=body["model"],
            choices=[{"index": 0, "message": message, "finish_reason": "stop"}],
            usage={"prompt_tokens": words, "completion_tokens": 2, "total_tokens": words + 2},
        )
        return answer.model_dump(exclude_none=True)

    return app


class EchoServer(ThreadedServer):
    def __init__(self, delay_s: float = 0.02) -> None:
        self.failures: dict[str, int] = {}
        super().__init__(echo_app(delay_s, self.failures))
        self.url = f"{self.url}/v1"


@pytest.fixture()
def echo_server() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server
