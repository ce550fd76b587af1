"""Batch jobs and their lines in the database: the one source of truth every process reads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.errors import Conflict, NotFound
from workers.models import Batch, BatchRequest, utcnow

ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
TERMINAL = ("completed", "failed", "cancelled", "expired")
_STATUS_STAMP = {
    "in_progress": "in_progress_at",
    "finalizing": "finalizing_at",
    "completed": "completed_at",
    "cancelling": "cancelling_at",
    "cancelled": "cancelled_at",
    "failed": "failed_at",
}


@dataclass(frozen=True)
class LineItem:
    """A valid input line, normalised: `request` holds the generation request plus its target."""

    line_no: int
    custom_id: str
    request: dict[str, Any]


@dataclass(frozen=True)
class RequestCounts:
    total: int
    completed: int
    failed: int


@dataclass(frozen=True)
class LineOutcome:
    custom_id: str
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class BatchStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def create(
        self,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        items: Sequence[LineItem],
        line_errors: list[dict[str, Any]],
        metadata: dict[str, Any] | None = None,
    ) -> Batch:
        """The batch and all its lines in one transaction: a crash leaves no half-created job."""
        batch = Batch(
            id=f"batch_{uuid.uuid4().hex}",
            input_file_id=input_file_id,
            endpoint=endpoint,
            completion_window=completion_window,
            status="in_progress",
            in_progress_at=utcnow(),
            meta=metadata,
            line_errors=line_errors,
            total=len(items) + len(line_errors),
        )
        with session_scope(self.sessions) as session:
            session.add(batch)
            session.flush()
            session.add_all(
                BatchRequest(batch_id=batch.id, line_no=i.line_no, custom_id=i.custom_id, request=i.request)
                for i in items
            )
        return batch

    def get(self, batch_id: str) -> Batch:
        with session_scope(self.sessions) as session:
            row = session.get(Batch, batch_id)
            if row is None:
                raise NotFound(f"no batch with id '{batch_id}'", param="batch_id")
            session.expunge(row)
            return row

    def list(self, limit: int = 20, after: str | None = None) -> list[Batch]:
        with session_scope(self.sessions) as session:
            query = select(Batch).order_by(Batch.created_at.desc(), Batch.id.desc())
            if after:
                anchor = session.get(Batch, after)
                if anchor is None:
                    raise NotFound(f"no batch with id '{after}'", param="after")
                query = query.where(
                    (Batch.created_at < anchor.created_at)
                    | ((Batch.created_at == anchor.created_at) & (Batch.id < anchor.id))
                )
            rows = list(session.scalars(query.limit(limit)))
            session.expunge_all()
            return rows

    def active_ids(self) -> list[str]:
        with session_scope(self.sessions) as session:
            return list(session.scalars(select(Batch.id).where(Batch.status.in_(ACTIVE))))

    def status(self, batch_id: str) -> str:
        return self.get(batch_id).status

    def set_status(self, batch_id: str, status: str, **fields: Any) -> None:
        stamp = _STATUS_STAMP.get(status)
        values = {"status": status, **fields, **({stamp: utcnow()} if stamp else {})}
        with session_scope(self.sessions) as session:
            session.execute(update(Batch).where(Batch.id == batch_id).values(**values))

    def request_cancel(self, batch_id: str) -> Batch:
        batch = self.get(batch_id)
        if batch.status in ("cancelling", "cancelled"):
            return batch
        if batch.status in TERMINAL:
            raise Conflict(f"batch '{batch_id}' is {batch.status} and cannot be cancelled", param="batch_id")
        self.set_status(batch_id, "cancelling")
        return self.get(batch_id)

    def counts(self, batch_id: str) -> RequestCounts:
        batch = self.get(batch_id)
        with session_scope(self.sessions) as session:
            query = (
                select(BatchRequest.status, func.count())
                .where(BatchRequest.batch_id == batch_id)
                .group_by(BatchRequest.status)
            )
            by_status = dict(session.execute(query).all())
        failed = by_status.get("failed", 0) + len(batch.line_errors)
        return RequestCounts(total=batch.total, completed=by_status.get("done", 0), failed=failed)

    def rows(self, batch_id: str, status: str | None = None) -> list[BatchRequest]:
        with session_scope(self.sessions) as session:
            query = select(BatchRequest).where(BatchRequest.batch_id == batch_id).order_by(BatchRequest.line_no)
            if status:
                query = query.where(BatchRequest.status == status)
            rows = list(session.scalars(query))
            session.expunge_all()
            return rows

    def save_decisions(
        self, batch_id: str, decisions: Sequence[tuple[str, dict[str, Any] | None, dict | None]]
    ) -> None:
        """(custom_id, decision, error): a line that could not be routed fails here with its reason."""
        with session_scope(self.sessions) as session:
            for custom_id, decision, error in decisions:
                values = {"status": "routed", "decision": decision} if error is None else {
                    "status": "failed", "error": error}  # fmt: skip
                session.execute(self._line(batch_id, custom_id).values(**values))

    def finish_lines(self, batch_id: str, outcomes: Sequence[LineOutcome]) -> None:
        with session_scope(self.sessions) as session:
            for o in outcomes:
                status = "failed" if o.error else "done"
                session.execute(
                    self._line(batch_id, o.custom_id)
                    .where(BatchRequest.status.in_(("pending", "routed")))  # workflow lines finish unrouted
                    .values(status=status, response=o.response, error=o.error)
                )

    @staticmethod
    def _line(batch_id: str, custom_id: str):  # type: ignore[no-untyped-def]
        return update(BatchRequest).where(BatchRequest.batch_id == batch_id, BatchRequest.custom_id == custom_id)
