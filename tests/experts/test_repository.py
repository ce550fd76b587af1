from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.db import make_engine, make_session_factory, migrate, session_scope
from core.errors import Conflict, InvalidRequest, NotFound, Unprocessable
from experts.bundled import check_base_model
from experts.repository import ExpertRepository
from experts.schemas import ExpertSpec, ExpertUpdate


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture()
def sessions(db_url: str):  # type: ignore[no-untyped-def]
    migrate(db_url)
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


def repo_in(session, model_dir: Path) -> ExpertRepository:  # type: ignore[no-untyped-def]
    return ExpertRepository(session, model_dir, check_base_model)


def local(name: str = "base", **extra: object) -> ExpertSpec:
    return ExpertSpec.model_validate({"name": name, "kind": "local", "base_model": "smollm2-135m-instruct", **extra})


def fake_adapter(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8}))
    (folder / "adapter_model.safetensors").write_bytes(b"")
    return folder


def test_add_list_update_remove_round_trip(sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with session_scope(sessions) as s:
        added = repo_in(s, tmp_path).add(local(skills=["chat", " "], exemplars=["hello"]))
    assert added.skills == ["chat"]
    with session_scope(sessions) as s:
        repo = repo_in(s, tmp_path)
        before = repo.fingerprint()
        updated = repo.update("base", ExpertUpdate(enabled=False, exemplars=["hi", "hey"]))
        assert repo.fingerprint() != before
    assert updated.enabled is False and updated.exemplars == ["hi", "hey"]
    with session_scope(sessions) as s:
        repo = repo_in(s, tmp_path)
        assert [e.name for e in repo.list()] == ["base"]
        assert repo.list(enabled_only=True) == []
        repo.remove("base")
        assert repo.list() == []


def test_duplicate_name_is_a_conflict_and_writes_nothing(sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with session_scope(sessions) as s:
        repo_in(s, tmp_path).add(local(description="first"))
    with pytest.raises(Conflict) as err, session_scope(sessions) as s:
        repo_in(s, tmp_path).add(local(description="second"))
    assert err.value.param == "name"
    with session_scope(sessions) as s:
        assert [e.description for e in repo_in(s, tmp_path).list()] == ["first"]


def test_lora_adapter_must_exist_inside_model_dir(sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    models = tmp_path / "models"
    spec = {"kind": "lora", "base_model": "smollm2-135m-instruct"}
    with session_scope(sessions) as s:
        repo = repo_in(s, models)
        with pytest.raises(Unprocessable, match="missing adapter_config.json"):
            repo.add(ExpertSpec.model_validate({"name": "a", "adapter_path": "adapters/none", **spec}))
        with pytest.raises(InvalidRequest, match="inside the model directory"):
            repo.add(ExpertSpec.model_validate({"name": "b", "adapter_path": "../../etc", **spec}))
        fake_adapter(models / "adapters" / "ok")
        added = repo.add(ExpertSpec.model_validate({"name": "c", "adapter_path": "adapters/ok", **spec}))
        assert Path(added.adapter_path or "").is_absolute()
        assert [e.name for e in repo.list()] == ["c"]


def test_unknown_base_model_and_missing_expert(sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with session_scope(sessions) as s:
        repo = repo_in(s, tmp_path)
        with pytest.raises(NotFound, match="unknown base model"):
            repo.add(ExpertSpec(name="x", kind="local", base_model="gpt-17"))
        with pytest.raises(NotFound):
            repo.remove("ghost")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "x", "kind": "quantum"}, "kind"),
        ({"name": "x", "kind": "lora", "base_model": "b"}, "needs adapter_path"),
        ({"name": "x", "kind": "litellm"}, "needs litellm_model"),
        ({"name": "bad name!", "kind": "local", "base_model": "b"}, "name"),
        ({"name": "x", "kind": "local", "base_model": "b", "cost_per_1k_tokens": -1}, "cost_per_1k_tokens"),
    ],
)
def test_invalid_specs_are_refused_before_the_database(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ExpertSpec.model_validate(fields)
