from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from core.db import make_engine, make_session_factory, migrate
from core.settings import get_settings
from router.data import load_examples
from router.evaluation import experts_from_examples
from router.finetune import is_finetuned
from router.quality import QualityParams
from router.quality_tuning import GRID
from router.router import build_router

DATA = get_settings().seed_data_dir
DOMAINS = ("banking", "travel", "kitchen_and_dining")


def _slice(name: str, per_label: int, field: str) -> list[dict]:  # type: ignore[type-arg]
    counts: dict[str, int] = {}
    rows = []
    for line in (DATA / name).read_text().splitlines():
        row = json.loads(line)
        if row[field] in (*DOMAINS, "oos") and counts.get(row[field], 0) < per_label:
            counts[row[field]] = counts.get(row[field], 0) + 1
            rows.append(row)
    return rows


def _write(path: Path, rows: list[dict]) -> Path:  # type: ignore[type-arg]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture()
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    if not (DATA / "clinc_dev.jsonl").is_file():
        pytest.skip(f"benchmark data not found in {DATA}")
    monkeypatch.setenv("MOE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_fit_then_eval_routing_on_a_clinc_slice(cli_env: Path) -> None:
    exemplars = _write(cli_env / "ex.jsonl", _slice("clinc_dev.jsonl", 40, "domain"))
    validation = _write(cli_env / "val.jsonl", _slice("clinc_val.jsonl", 20, "domain"))
    runner = CliRunner()
    common = ["--exemplars", str(exemplars), "--label-field", "domain", "--fine-label-field", "intent"]
    fitted = runner.invoke(app, ["router", "fit", *common, "--validation", str(validation)])
    assert fitted.exit_code == 0, fitted.output
    saved = json.loads(fitted.stdout.strip().splitlines()[-1])
    assert sorted(saved["experts"]) == sorted(DOMAINS) and saved["null_threshold"] is not None
    assert (cli_env / "router" / "fitted.pkl").is_file()

    plot = cli_env / "confusion.png"
    result = runner.invoke(
        app, ["eval", "routing", *common, "--test", str(validation), "--validation", str(validation), "--json",
              "--plot", str(plot)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"accuracy", "macro_f1", "per_class_recall", "oos_recall", "abstain_rate", "latency"} <= set(report)
    # Tuned on this file (plus the exemplars' OOS rows) for OOS recall 0.9: close to that here.
    assert report["accuracy"] > 0.7 and report["oos_recall"] >= 0.7 and report["abstain_rate"] < 0.5
    assert plot.stat().st_size > 1000

    knn = runner.invoke(app, ["eval", "routing", *common, "--test", str(validation), "--json"])
    assert knn.exit_code == 0, knn.output
    assert json.loads(knn.stdout.strip().splitlines()[-1])["accuracy"] > 0.7


def test_fit_with_finetune_moves_the_server_router_into_the_tuned_space(cli_env: Path) -> None:
    train = _slice("clinc_dev.jsonl", 40, "domain")
    exemplars = _write(cli_env / "ex.jsonl", train)
    validation = _write(cli_env / "val.jsonl", _slice("clinc_val.jsonl", 20, "domain"))
    common = ["--exemplars", str(exemplars), "--label-field", "domain", "--fine-label-field", "intent"]
    runner = CliRunner()
    fit = ["router", "fit", *common, "--validation", str(validation), "--finetune", "--finetune-epochs", "2"]
    fitted = runner.invoke(app, fit)
    assert fitted.exit_code == 0, fitted.output
    saved = json.loads(fitted.stdout.strip().splitlines()[-1])
    encoder_dir = Path(saved["encoder"])
    assert encoder_dir.parent == cli_env / "router" / "encoders" and is_finetuned(encoder_dir)

    settings = get_settings()
    migrate(settings.sqlalchemy_url)
    router = build_router(settings, make_session_factory(make_engine(settings.sqlalchemy_url)))
    assert router.encoder.name == str(encoder_dir)
    assert router.fitted is not None and router.fitted.scope is not None
    router.refresh(experts_from_examples(load_examples(exemplars, "domain"), "oos"), "clinc-slice")
    # The kNN index was built in the tuned space, in its own file.
    assert len(list((cli_env / "router").glob("knn-*.faiss"))) == 1
    decision = router.route("please transfer 200 dollars from checking to savings", "head")
    assert decision.experts[0].name == "banking" and decision.in_scope_score is not None
    router.close()

    # Evaluating the same fit reuses the tuned encoder (same data, same config) instead of training again.
    evaluate = ["eval", "routing", *common, "--test", str(validation), "--validation", str(validation)]
    report = runner.invoke(app, [*evaluate, "--finetune", "--finetune-epochs", "2", "--json"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout.strip().splitlines()[-1])["accuracy"] > 0.7
    assert [p.name for p in (cli_env / "router" / "encoders").iterdir()] == [encoder_dir.name]


def test_eval_routing_refuses_labels_no_expert_has(cli_env: Path) -> None:
    exemplars = _write(cli_env / "ex.jsonl", [{"text": "hi", "label": "a"}, {"text": "yo", "label": "b"}])
    test = _write(cli_env / "test.jsonl", [{"text": "hey", "label": "zebra"}])
    result = CliRunner().invoke(app, ["eval", "routing", "--exemplars", str(exemplars), "--test", str(test)])
    assert result.exit_code == 2 and "no expert has: zebra" in result.output
    missing = CliRunner().invoke(app, ["eval", "routing", "--exemplars", str(exemplars), "--test", "nope.jsonl"])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_eval_cost_quality_prints_routellm_metrics(cli_env: Path) -> None:
    rows = []
    for line in (DATA / "routellm_outcomes_dev.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["benchmark"] == "mmlu" and row["subject"] in ("high_school_biology", "college_mathematics"):
            rows.append({"query": row["query"], "outcomes": {k: float(v) for k, v in row["outcomes"].items()}})
    train = _write(cli_env / "train.jsonl", rows[::2])
    test = _write(cli_env / "test.jsonl", rows[1::2])
    plot = cli_env / "curve.png"
    result = CliRunner().invoke(
        app, ["eval", "cost-quality", "--outcomes", str(train), "--test", str(test), "--json", "--plot", str(plot)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"apgr", "cpt_50", "cpt_80"} <= set(report) and 0.0 <= report["cpt_50"] <= 100.0
    assert report["strong_quality"] > report["weak_quality"]
    assert plot.stat().st_size > 1000


def test_eval_cost_quality_learns_skill_paths_from_the_named_fields(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = []
    for line in (DATA / "routellm_outcomes_dev.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["subject"] in ("high_school_biology", "college_mathematics", "math_word_problem"):
            rows.append(row)
    train, test = _write(cli_env / "train.jsonl", rows[::2]), _write(cli_env / "test.jsonl", rows[1::2])
    paths = ["--skill-field", "benchmark", "--skill-field", "subject"]
    common = ["eval", "cost-quality", "--outcomes", str(train), "--test", str(test), "--json"]
    result = CliRunner().invoke(app, [*common, *paths])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["skills"] == 3  # mmlu/high_school_biology, mmlu/college_mathematics, gsm8k/math_word_problem
    assert 0.0 <= report["apgr"] <= 1.0
    assert report["setting"] == asdict(QualityParams())
    # The server's settings are what the eval measures ...
    monkeypatch.setenv("MOE_ROUTER_QUALITY_NEIGHBOURS", "16")
    get_settings.cache_clear()
    configured = json.loads(CliRunner().invoke(app, [*common, *paths]).stdout.strip().splitlines()[-1])
    assert configured["setting"]["neighbours"] == 16
    # ... unless --tune chooses on the outcomes.
    tuned = CliRunner().invoke(app, [*common, *paths, "--tune"])
    assert tuned.exit_code == 0, tuned.output
    setting = json.loads(tuned.stdout.strip().splitlines()[-1])["setting"]
    assert all(setting[name] in values for name, values in GRID.items()), setting
    missing = CliRunner().invoke(app, [*common, "--skill-field", "colour"])
    assert missing.exit_code == 2 and "skill field(s) colour" in missing.output


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("{not json", "not valid JSON"),
        ('{"query": "q"}', "needs 'query'"),
        ('{"query": "q", "outcomes": {"a": "x"}}', "every outcome must be a number"),
    ],
)
def test_eval_cost_quality_names_the_bad_line(cli_env: Path, line: str, says: str) -> None:
    good = '{"query": "hi", "outcomes": {"a": 1, "b": 0}}'
    bad = cli_env / "bad.jsonl"
    bad.write_text(f"{good}\n{line}\n")
    result = CliRunner().invoke(app, ["eval", "cost-quality", "--outcomes", str(bad), "--test", str(bad)])
    assert result.exit_code == 2 and f"bad.jsonl:2: {says}" in " ".join(result.output.split())  # rich wraps lines
