"""What every `moe` sub-command shares: error exit and a registry session from the settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from core.db import make_engine, make_session_factory, migrate, session_scope
from core.errors import MoEError
from core.settings import get_settings

errors = Console(stderr=True)


def fail(exc: MoEError) -> NoReturn:
    errors.print(f"[red]error[/red]: {exc.message}")
    raise typer.Exit(code=2)


@contextmanager
def registry_session() -> Iterator[Session]:
    """One transaction on the configured database, migrated first (a CLI may be the first to touch it)."""
    settings = get_settings()
    settings.ensure_dirs()
    migrate(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()
