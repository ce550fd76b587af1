"""The outcomes table: feedback and imported evaluations, read back into an OutcomeLog at start."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base
from core.errors import InvalidRequest
from router.outcomes import Outcome, OutcomeLog


class OutcomeRow(Base):
    __tablename__ = "routing_outcomes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[str | None] = mapped_column(String(64), index=True)
    query: Mapped[str] = mapped_column(Text)
    expert: Mapped[str] = mapped_column(String(128), index=True)
    score: Mapped[float] = mapped_column(Float)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(32), default="feedback")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))


class OutcomeStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, outcome: Outcome, source: str = "feedback") -> int:
        if not 0.0 <= outcome.score <= 1.0:
            raise InvalidRequest(f"score must lie in [0, 1], got {outcome.score}", param="score")
        row = OutcomeRow(
            query_id=outcome.query_id,
            query=outcome.query,
            expert=outcome.expert,
            score=outcome.score,
            skills=list(outcome.skills),
            source=source,
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def load(self, limit: int | None = None) -> OutcomeLog:
        query = select(OutcomeRow).order_by(OutcomeRow.id.desc())
        if limit:
            query = query.limit(limit)
        rows = list(self.session.scalars(query))[::-1]
        return OutcomeLog([Outcome(r.query, r.expert, r.score, tuple(r.skills or ()), r.query_id) for r in rows])

    def count(self) -> int:
        return len(self.session.scalars(select(OutcomeRow.id)).all())
