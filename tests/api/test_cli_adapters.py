"""`moe adapters train` on the real bundled model: a few PEFT steps, PEFT's format out, clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from core.settings import get_settings
from experts.moe import read_adapter
from tests.conftest import TEST_MODEL_DIR


@pytest.fixture()
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MOE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MOE_MODEL_DIR", str(TEST_MODEL_DIR))  # the converted base model is cached there
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_train_writes_an_adapter_in_peft_format(cli_env: Path) -> None:
    data = cli_env / "data.jsonl"
    rows = [{"prompt": f"What is {i} plus 1?", "completion": f"{i + 1}."} for i in range(3)]
    rows.append({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]})
    data.write_text("\n".join(json.dumps(r) for r in rows))
    out = cli_env / "my-adapter"
    args = ["adapters", "train", "--data", str(data), "--out", str(out), "--rank", "4", "--steps", "2"]
    result = CliRunner().invoke(app, [*args, "--target", "q_proj", "--target", "v_proj", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "wrote adapter" in result.output
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 4 and sorted(config["target_modules"]) == ["q_proj", "v_proj"]
    adapter = read_adapter(out)
    assert adapter.ranks == {4} and len(adapter.modules) == 2 * 30
    assert any(m.b.abs().sum() > 0 for m in adapter.modules.values())  # trained: B left its zero init


def test_bad_data_and_bad_targets_are_refused(cli_env: Path) -> None:
    bad = cli_env / "bad.jsonl"
    bad.write_text('{"prompt": "x", "completion": "y"}\n{"question": "no completion"}\n')
    result = CliRunner().invoke(app, ["adapters", "train", "--data", str(bad), "--out", str(cli_env / "o")])
    assert result.exit_code == 2 and "bad.jsonl:2" in result.output
    missing = CliRunner().invoke(app, ["adapters", "train", "--data", str(cli_env / "nope.jsonl"), "--out", "o"])
    assert missing.exit_code == 2 and "cannot read" in missing.output
    target = ["adapters", "train", "--data", str(bad), "--out", "o", "--target", "lm_head"]
    wrong = CliRunner().invoke(app, target)
    assert wrong.exit_code == 2 and "lm_head" in wrong.output
    assert not (cli_env / "o").exists()
