from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from core.settings import get_settings


@pytest.fixture()
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_experts_add_list_remove(cli_env: Path) -> None:
    runner = CliRunner()
    added = runner.invoke(
        app,
        ["experts", "add", "helper", "--kind", "local", "--base-model", "smollm2-135m-instruct",
         "--skill", "chat", "--exemplar", "hello there"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = json.loads(runner.invoke(app, ["experts", "list", "--json"]).output)
    assert [(e["name"], e["skills"]) for e in listed] == [("helper", ["chat"])]
    duplicate = runner.invoke(
        app, ["experts", "add", "helper", "--kind", "local", "--base-model", "smollm2-135m-instruct"]
    )
    assert duplicate.exit_code == 2 and "already exists" in duplicate.output
    assert runner.invoke(app, ["experts", "remove", "helper"]).exit_code == 0
    assert json.loads(runner.invoke(app, ["experts", "list", "--json"]).output) == []
    missing = runner.invoke(app, ["experts", "remove", "helper"])
    assert missing.exit_code == 2 and "no expert named" in missing.output


def test_bad_kind_is_refused(cli_env: Path) -> None:
    result = CliRunner().invoke(app, ["experts", "add", "x", "--kind", "quantum"])
    assert result.exit_code != 0
