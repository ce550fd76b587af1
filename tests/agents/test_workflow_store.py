"""The workflows and aggregator-choice tables on the real PostgreSQL and on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from agents.workflow_spec import parse_workflow
from agents.workflow_store import AggregatorChoice, AggregatorChoiceRepository, WorkflowRepository
from core.db import make_engine, make_session_factory, migrate, session_scope
from core.errors import Conflict, NotFound, Unprocessable
from experts.models import Expert

FLOW = "name: pair\nrouting: {experts: [alpha, beta]}\naggregator: {type: majority-vote}\n"


@pytest.fixture(params=["sqlite", "postgres"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    migrate(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        session.add_all([Expert(name="alpha", kind="local"), Expert(name="beta", kind="local")])
    yield factory
    engine.dispose()


def test_save_list_replace_remove(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        saved = WorkflowRepository(session).save(parse_workflow(FLOW))
    assert saved.spec().routing.experts == ["alpha", "beta"]
    with session_scope(sessions) as session, pytest.raises(Conflict):
        WorkflowRepository(session).save(parse_workflow(FLOW))
    changed = parse_workflow(FLOW.replace("majority-vote", "pass-through"))
    with session_scope(sessions) as session:
        WorkflowRepository(session).save(changed, replace=True)
    with session_scope(sessions) as session:
        stored = WorkflowRepository(session).list()
    assert [(w.name, w.spec().aggregator.type) for w in stored] == [("pair", "pass-through")]  # type: ignore[union-attr]
    with session_scope(sessions) as session:
        WorkflowRepository(session).remove("pair")
    with session_scope(sessions) as session, pytest.raises(NotFound):
        WorkflowRepository(session).get("pair")


def test_refused_workflow_writes_nothing(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session, pytest.raises(Unprocessable):
        WorkflowRepository(session).save(parse_workflow(FLOW.replace("beta", "gamma")))
    with session_scope(sessions) as session:
        session.query(Expert).filter_by(name="beta").update({"enabled": False})
    with session_scope(sessions) as session, pytest.raises(Unprocessable) as caught:
        WorkflowRepository(session).save(parse_workflow(FLOW))
    assert caught.value.param == "routing.experts.1"
    with session_scope(sessions) as session:
        assert WorkflowRepository(session).list() == []


def test_aggregator_choices_upsert(sessions: sessionmaker[Session]) -> None:
    first = AggregatorChoice(task="math", aggregator="majority-vote", score=0.9, scores={"pass-through": 0.8,
                             "majority-vote": 0.9}, samples=60)  # fmt: skip
    with session_scope(sessions) as session:
        AggregatorChoiceRepository(session).store({"math": first})
    second = first.model_copy(update={"aggregator": "pass-through", "score": 0.95})
    with session_scope(sessions) as session:
        AggregatorChoiceRepository(session).store({"math": second})
    with session_scope(sessions) as session:
        assert AggregatorChoiceRepository(session).all() == {"math": second}
