"""Shared fixtures: real bundled models, real SQLite files, real PostgreSQL and Redis.

Converted models and trained demo adapters are cached under `.cache/test-models` so a second
local run skips that work; CI starts from a fresh clone and builds them once per run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

import core.env  # noqa: F401  (offline defaults before heavy imports)
from agents.prestart import prepare
from api.app import create_app
from api.serving import ThreadedServer
from core.settings import REPO_ROOT, Settings, get_settings

torch.set_num_threads(max(1, os.cpu_count() or 1))
TEST_MODEL_DIR = Path(os.environ.get("MOE_TEST_MODEL_DIR", REPO_ROOT / ".cache" / "test-models"))
REQUIRE_SERVICES = os.environ.get("MOE_REQUIRE_SERVICES") == "1"


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    fields: dict[str, object] = {
        "data_dir": data_dir,
        "MOE_MODEL_DIR": str(TEST_MODEL_DIR),  # the alias: pydantic-settings ignores the field name here
        "seed_adapter_steps": 6,
        "default_max_tokens": 24,
        **overrides,
    }
    return Settings(**fields)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _fresh_settings_cache() -> Iterator[None]:
    """CLI commands read settings from the environment: no test may see another test's cached copy."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A seeded registry (SQLite file) over the real bundled model and the demo adapters."""
    settings = make_settings(tmp_path_factory.mktemp("moe-data"))
    prepare(settings, progress=False)
    return settings


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _service_unavailable(what: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required in CI but cannot be reached")
    pytest.skip(f"{what} not reachable (set MOE_REQUIRE_SERVICES=1 to make this a failure)")


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    """A fresh schema in the real PostgreSQL for each test, dropped afterwards."""
    base = os.environ.get("MOE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = f"moe_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(base)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001  (any connection failure means the service is missing)
        _service_unavailable(f"PostgreSQL ({exc.__class__.__name__})")
    yield f"{base}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


class LiveServer(ThreadedServer):
    """This project's own API on a loopback port, served by a real uvicorn in a thread."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(create_app(settings))


@pytest.fixture(scope="session")
def live_server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings) as server:
        yield server
