from __future__ import annotations

from datetime import UTC, datetime

import pytest

from experts.schemas import ExpertOut
from router.encoder import Encoder


def make_expert(
    name: str, exemplars: list[str], description: str = "", skills: list[str] | None = None, cost: float = 0.0
) -> ExpertOut:
    now = datetime.now(UTC)
    return ExpertOut(
        id=abs(hash(name)) % 1000, name=name, kind="local", base_model="b", description=description,
        exemplars=exemplars, skills=skills or [], cost_per_1k_tokens=cost, created_at=now, updated_at=now,
    )  # fmt: skip


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return Encoder()
