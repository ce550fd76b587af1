"""Group a batch's calls by expert group (one model in memory) and run them chunk by chunk."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from experts.backends.base import CallOutcome
from experts.backends.pool import BackendPool
from experts.generation import ExpertCall
from workers.models import Batch
from workers.results import ResultKey, result_keys, upsert_results
from workers.wire import call_from_json, call_to_json

STOPPED = ("cancelling", "cancelled")


@dataclass(frozen=True)
class BatchCall:
    """One line bound for one expert."""

    custom_id: str
    call: ExpertCall

    @property
    def key(self) -> ResultKey:
        return ResultKey(self.custom_id, self.call.expert.name)

    def to_json(self) -> dict[str, Any]:
        return {"custom_id": self.custom_id, **call_to_json(self.call)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchCall:
        return cls(str(data["custom_id"]), call_from_json(data))


def queue_name(group: str) -> str:
    """One Celery queue per expert group, e.g. `local:smollm2` -> `moe.local.smollm2`."""
    return "moe." + re.sub(r"[^A-Za-z0-9_\-]+", ".", group)


def group_calls(calls: Sequence[BatchCall], key: Callable[[ExpertCall], str]) -> dict[str, list[BatchCall]]:
    """Symbolic-MoE's "load each model once": every call for one model lands in one group."""
    groups: dict[str, list[BatchCall]] = {}
    for c in calls:
        groups.setdefault(key(c.call), []).append(c)
    return groups


def pool_key(pool: BackendPool) -> Callable[[ExpertCall], str]:
    return lambda call: pool.batch_key(call.expert)


def chunked(items: Sequence[BatchCall], size: int) -> Iterator[list[BatchCall]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def execute_chunk(
    pool: BackendPool,
    sessions: sessionmaker[Session],
    batch_id: str,
    chunk: Sequence[BatchCall],
    keep: Callable[[BatchCall, CallOutcome], bool] | None = None,
) -> list[tuple[BatchCall, CallOutcome]]:
    """Run the calls of one chunk that have no stored outcome yet; store those `keep` accepts (default all).

    Shared by the in-process path and the Celery task: a redelivered chunk skips what is stored,
    and a stopped batch runs nothing. Returns what ran.
    """
    with session_scope(sessions) as session:
        batch = session.get(Batch, batch_id)
        if batch is None or batch.status in STOPPED:
            return []
        done = result_keys(session, batch_id)
    todo = [c for c in chunk if c.key not in done]
    if not todo:
        return []
    ran = list(zip(todo, pool.runner(todo[0].call.expert).run([c.call for c in todo]), strict=True))
    with session_scope(sessions) as session:
        upsert_results(session, batch_id, [(c.key, o) for c, o in ran if keep is None or keep(c, o)])
    return ran
