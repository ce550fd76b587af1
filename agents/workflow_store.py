"""Workflows and per-task aggregator choices in the registry DB (tables from migration 0003)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from agents.workflow_spec import WorkflowSpec
from core.db import Base
from core.errors import Conflict, NotFound, Unprocessable
from experts.models import Expert, utcnow
from router.router import STRATEGIES, parse_route_model


class Workflow(Base):
    __tablename__ = "workflows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class AggregatorChoiceRow(Base):
    __tablename__ = "aggregator_choices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    aggregator: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    scores: Mapped[dict[str, float]] = mapped_column(JSON)
    samples: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class WorkflowOut(BaseModel):
    name: str
    description: str
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def spec(self) -> WorkflowSpec:
        return WorkflowSpec.model_validate(self.definition)


class AggregatorChoice(BaseModel):
    task: str
    aggregator: str
    score: float
    scores: dict[str, float]
    samples: int


def _is_route_model(name: str) -> bool:
    try:
        parse_route_model(name)
    except NotFound:
        return False
    return True


def check_references(spec: WorkflowSpec, enabled: Collection[str]) -> None:
    """Refuse what would fail at run time: missing or disabled experts, unknown strategies, k too large."""
    if spec.name == "auto" or _is_route_model(spec.name):
        raise Conflict(f"'moe:{spec.name}' is a routing model; choose another workflow name", param="name")
    for path, name in spec.expert_refs().items():
        if name not in enabled:
            raise Unprocessable(f"{path}: no enabled expert named '{name}'", param=path)
    routing = spec.routing
    if routing.strategy is not None and not _is_route_model(routing.strategy):
        known = ", ".join(sorted(STRATEGIES))
        message = f"routing.strategy: unknown strategy '{routing.strategy}' (known: {known})"
        raise Unprocessable(message, param="routing.strategy")
    if not routing.experts and routing.k > len(enabled):
        raise Unprocessable(
            f"routing.k: k is {routing.k} but only {len(enabled)} experts are enabled", param="routing.k"
        )


class WorkflowRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def list(self) -> list[WorkflowOut]:
        rows = self.session.scalars(select(Workflow).order_by(Workflow.name))
        return [WorkflowOut.model_validate(r, from_attributes=True) for r in rows]

    def find(self, name: str) -> WorkflowOut | None:
        row = self.session.scalar(select(Workflow).where(Workflow.name == name))
        return WorkflowOut.model_validate(row, from_attributes=True) if row else None

    def get(self, name: str) -> WorkflowOut:
        found = self.find(name)
        if found is None:
            raise NotFound(f"no workflow named '{name}'", param="name")
        return found

    def enabled_experts(self) -> list[str]:
        return list(self.session.scalars(select(Expert.name).where(Expert.enabled.is_(True))))

    def validate(self, spec: WorkflowSpec) -> None:
        check_references(spec, self.enabled_experts())

    def save(self, spec: WorkflowSpec, *, replace: bool = False) -> WorkflowOut:
        self.validate(spec)
        row = self.session.scalar(select(Workflow).where(Workflow.name == spec.name))
        if row is not None and not replace:
            raise Conflict(f"a workflow named '{spec.name}' already exists", param="name")
        definition = spec.model_dump(mode="json", exclude_none=True)
        if row is None:
            row = Workflow(name=spec.name, description=spec.description, definition=definition)
            self.session.add(row)
        else:
            row.description, row.definition, row.updated_at = spec.description, definition, utcnow()
        try:
            self.session.flush()
        except IntegrityError as exc:  # a concurrent save of the same name
            self.session.rollback()
            raise Conflict(f"a workflow named '{spec.name}' already exists", param="name") from exc
        return WorkflowOut.model_validate(row, from_attributes=True)

    def remove(self, name: str) -> None:
        row = self.session.scalar(select(Workflow).where(Workflow.name == name))
        if row is None:
            raise NotFound(f"no workflow named '{name}'", param="name")
        self.session.delete(row)
        self.session.flush()


class AggregatorChoiceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def all(self) -> dict[str, AggregatorChoice]:
        rows = self.session.scalars(select(AggregatorChoiceRow).order_by(AggregatorChoiceRow.task))
        return {r.task: AggregatorChoice.model_validate(r, from_attributes=True) for r in rows}

    def store(self, choices: Mapping[str, AggregatorChoice]) -> None:
        for task, choice in choices.items():
            row = self.session.scalar(select(AggregatorChoiceRow).where(AggregatorChoiceRow.task == task))
            if row is None:
                row = AggregatorChoiceRow(task=task)
                self.session.add(row)
            row.aggregator, row.score, row.scores, row.samples = (
                choice.aggregator,
                choice.score,
                choice.scores,
                choice.samples,
            )
            row.updated_at = utcnow()
        self.session.flush()
