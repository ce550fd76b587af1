"""Expert answers to batch lines, written idempotently by (batch_id, custom_id, expert_id)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.errors import MoEError
from experts.backends.base import CallOutcome
from workers.models import BatchResult, utcnow
from workers.wire import error_to_json


@dataclass(frozen=True)
class ResultKey:
    custom_id: str
    expert_id: str


def _values(batch_id: str, key: ResultKey, outcome: CallOutcome) -> dict[str, Any]:
    base = {"batch_id": batch_id, "custom_id": key.custom_id, "expert_id": key.expert_id, "created_at": utcnow()}
    if isinstance(outcome, MoEError):
        return {**base, "text": "", "prompt_tokens": 0, "completion_tokens": 0, "finish_reason": "stop",
                "error": error_to_json(outcome)}  # fmt: skip
    return {
        **base,
        "text": outcome.text,
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "finish_reason": outcome.finish_reason,
        "error": None,
    }


def upsert_results(session: Session, batch_id: str, rows: Sequence[tuple[ResultKey, CallOutcome]]) -> None:
    """A redelivered task writes the same keys again: the unique constraint turns that into an update."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"no upsert for database dialect '{dialect}'")
    values = [_values(batch_id, key, outcome) for key, outcome in rows]
    stmt = insert(BatchResult).values(values)
    updated = {c: stmt.excluded[c] for c in ("text", "prompt_tokens", "completion_tokens", "finish_reason", "error")}
    session.execute(stmt.on_conflict_do_update(index_elements=["batch_id", "custom_id", "expert_id"], set_=updated))


def result_keys(session: Session, batch_id: str) -> set[ResultKey]:
    query = select(BatchResult.custom_id, BatchResult.expert_id).where(BatchResult.batch_id == batch_id)
    return {ResultKey(c, e) for c, e in session.execute(query)}


def results_for(session: Session, batch_id: str, custom_ids: Iterable[str]) -> dict[str, list[BatchResult]]:
    wanted = list(custom_ids)
    found: dict[str, list[BatchResult]] = {c: [] for c in wanted}
    for start in range(0, len(wanted), 500):  # keep IN lists short for SQLite's variable limit
        query = select(BatchResult).where(
            BatchResult.batch_id == batch_id, BatchResult.custom_id.in_(wanted[start : start + 500])
        )
        for row in session.scalars(query):
            found[row.custom_id].append(row)
    return found
