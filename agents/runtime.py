"""Everything a query needs, built once (app lifespan or CLI) and passed around explicitly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from core.db import SqliteCommits, make_engine, make_session_factory, migrate, session_scope
from core.settings import Settings
from experts.backends.pool import BackendPool
from experts.bundled import check_base_model
from experts.repository import ExpertRepository
from experts.schemas import ExpertOut
from router.router import Router, build_router
from workers.executor import Executor
from workers.factory import make_executor

T = TypeVar("T")


@dataclass
class Runtime:
    settings: Settings
    sessions: sessionmaker[Session]
    router: Router
    pool: BackendPool
    executor: Executor
    commits: SqliteCommits | None = None
    _checked_at_version: int | None = field(default=None, init=False)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        settings.ensure_dirs()
        migrate(settings.sqlalchemy_url)
        sessions = make_session_factory(make_engine(settings.sqlalchemy_url))
        pool = BackendPool(settings.model_dir, settings.device, settings.remote_timeout_s)
        executor = make_executor(pool, settings)  # Celery when MOE_REDIS_URL is set, else in-process
        commits = SqliteCommits.watch(settings.sqlalchemy_url)
        runtime = cls(settings, sessions, build_router(settings, sessions), pool, executor, commits)
        runtime.refresh_router()
        return runtime

    def repository(self, session: Session) -> ExpertRepository:
        return ExpertRepository(session, self.settings.model_dir, check_base_model)

    async def in_registry(self, action: Callable[[ExpertRepository], T]) -> T:
        """Run `action` on the registry in one transaction, off the event loop."""

        def run() -> T:
            with session_scope(self.sessions) as session:
                return action(self.repository(session))

        return await asyncio.to_thread(run)

    def refresh_router(self) -> list[ExpertOut]:
        """Refit the router if the registry changed since the last call; when it did not (every query
        but a few), this is one small query and the experts come from the router's last fit."""
        seen = self.commits.version() if self.commits else None  # read first: the check below is at least as new
        with session_scope(self.sessions) as session:
            repo = self.repository(session)
            fingerprint = repo.fingerprint()
            if fingerprint != self.router.fingerprint:
                experts = repo.list(enabled_only=True)
                self.router.refresh(experts, fingerprint)
        self._checked_at_version = seen
        return self.router.experts

    def enabled_experts(self) -> dict[str, ExpertOut]:
        return {e.name: e for e in self.refresh_router()}

    async def aenabled_experts(self) -> dict[str, ExpertOut]:
        """`enabled_experts` for the event loop. On SQLite, when nobody has committed anything since the
        last check, the registry is as the router was fitted on and no query is needed; otherwise the
        check (and a refit, if the registry changed) runs on a thread."""
        if self.commits is not None and self._checked_at_version == self.commits.version():
            return {e.name: e for e in self.router.experts}
        return await asyncio.to_thread(self.enabled_experts)

    async def aclose(self) -> None:
        self.router.close()
        await self.executor.aclose()
