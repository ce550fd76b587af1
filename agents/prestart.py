"""The prestart step: schema migrations, the base model converted once, the default registry."""

from __future__ import annotations

from core.db import make_engine, make_session_factory, migrate, session_scope
from core.settings import Settings
from experts.bundled import DEFAULT_BASE, base_model_path, check_base_model
from experts.repository import ExpertRepository
from experts.seed import seed_if_empty


def prepare(settings: Settings, progress: bool = True) -> list[str]:
    """Idempotent: a second call converts, trains and writes nothing. Returns the experts it seeded."""
    settings.ensure_dirs()
    migrate(settings.sqlalchemy_url)
    base_model_path(DEFAULT_BASE, settings.model_dir)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            repo = ExpertRepository(session, settings.model_dir, check_base_model)
            return seed_if_empty(repo, settings, progress)
    finally:
        engine.dispose()
