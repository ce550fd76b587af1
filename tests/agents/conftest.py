from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient

from agents.runtime import Runtime
from core.settings import Settings

T = TypeVar("T")


@pytest.fixture(scope="session")
def runtime(client: TestClient) -> Runtime:
    """The shared app's runtime (real models, real in-process executor). Tests here never change its registry."""
    return client.app.state.runtime  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(scope="session")
def in_app(client: TestClient) -> Callable[..., Any]:
    """Run a coroutine on the app's own event loop, where its executor's batch consumers live."""

    def run(fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        return client.portal.call(functools.partial(fn, *args, **kwargs))  # type: ignore[union-attr]

    return run


@pytest.fixture(scope="session")
def gsm8k_rows(settings: Settings) -> list[dict[str, Any]]:
    """RouteLLM's GSM8K rows (real GPT-4 and Mixtral answers) joined with the human reference solution."""
    path = settings.seed_data_dir / "routellm_outcomes_dev.jsonl"
    if not path.exists():
        pytest.fail(f"benchmark data missing: {path}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if '"gsm8k"' in line]
    rows = [r for r in rows if r["benchmark"] == "gsm8k"]
    reference = [json.loads(line) for line in (settings.seed_data_dir / "gsm8k_test.jsonl").read_text().splitlines()]
    for row in rows:
        row["reference"] = reference[int(row["id"].rsplit("/", 1)[1])]["answer"]
    return rows
