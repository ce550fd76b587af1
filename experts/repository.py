"""Reads and writes of the expert registry. Validation happens before any row is written."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound
from experts.models import Expert, utcnow
from experts.paths import check_adapter_dir, confined_path
from experts.schemas import ExpertKind, ExpertOut, ExpertSpec, ExpertUpdate

BaseModelCheck = Callable[[str], None]


class ExpertRepository:
    def __init__(self, session: Session, model_dir: Path, known_base: BaseModelCheck | None = None) -> None:
        self.session = session
        self.model_dir = model_dir
        self.known_base = known_base

    def list(self, *, enabled_only: bool = False) -> list[ExpertOut]:
        query = select(Expert).order_by(Expert.id)
        if enabled_only:
            query = query.where(Expert.enabled.is_(True))
        return [ExpertOut.model_validate(e) for e in self.session.scalars(query)]

    def get(self, name: str) -> ExpertOut:
        return ExpertOut.model_validate(self._row(name))

    def find(self, name: str) -> ExpertOut | None:
        row = self.session.scalar(select(Expert).where(Expert.name == name))
        return ExpertOut.model_validate(row) if row else None

    def add(self, spec: ExpertSpec) -> ExpertOut:
        spec = self._validated(spec)
        if self.find(spec.name):
            raise Conflict(f"an expert named '{spec.name}' already exists", param="name")
        row = Expert(**spec.model_dump(mode="json"))
        self.session.add(row)
        try:
            self.session.flush()
        except IntegrityError as exc:  # a concurrent add of the same name
            self.session.rollback()
            raise Conflict(f"an expert named '{spec.name}' already exists", param="name") from exc
        return ExpertOut.model_validate(row)

    def update(self, name: str, changes: ExpertUpdate) -> ExpertOut:
        row = self._row(name)
        for field, value in changes.model_dump(exclude_unset=True).items():
            setattr(row, field, value)
        row.updated_at = utcnow()
        self.session.flush()
        return ExpertOut.model_validate(row)

    def remove(self, name: str) -> None:
        self.session.delete(self._row(name))
        self.session.flush()

    def fingerprint(self) -> str:
        """Changes whenever any expert is added, removed or edited: the router rebuilds on change."""
        rows = self.session.execute(select(Expert.id, Expert.updated_at).order_by(Expert.id)).all()
        return hashlib.sha1(repr(rows).encode()).hexdigest()

    def _row(self, name: str) -> Expert:
        row = self.session.scalar(select(Expert).where(Expert.name == name))
        if row is None:
            raise NotFound(f"no expert named '{name}'", param="name")
        return row

    def _validated(self, spec: ExpertSpec) -> ExpertSpec:
        if spec.kind == ExpertKind.lora and spec.adapter_path:
            path = confined_path(spec.adapter_path, self.model_dir)
            check_adapter_dir(path)
            spec = spec.model_copy(update={"adapter_path": str(path)})
        if spec.kind in (ExpertKind.local, ExpertKind.lora) and spec.base_model and self.known_base:
            self.known_base(spec.base_model)
        return spec
