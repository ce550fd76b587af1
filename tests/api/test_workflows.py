"""Workflows end to end: admin API and CLI, then `"model": "moe:<name>"` through /v1/chat/completions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from agents.prestart import prepare
from api.app import create_app
from api.cli import app as cli
from api.serving import free_port
from core.db import session_scope
from core.settings import Settings, get_settings
from experts.schemas import ExpertKind, ExpertSpec, ExpertUpdate
from tests.api.batch_client import batch_line, create_batch, jsonl_file, upload, wait_batch
from tests.conftest import make_settings

KEY = "workflow-admin-key"
AUTH = {"X-API-Key": KEY}
YAML = {"content-type": "application/yaml", **AUTH}

CAREFUL = """
name: careful
description: two local experts, fused by the bundled model, then checked once
routing:
  experts: [math-lora, smollm2]
aggregator: {type: synthesis, expert: smollm2}
steps:
  - {type: verify, id: check, expert: smollm2}
  - {type: refine, id: fix, expert: smollm2, goto: check, max_rounds: 1}
"""


@pytest.fixture(scope="module")
def wf_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = make_settings(tmp_path_factory.mktemp("workflows"), admin_key=KEY, default_max_tokens=8)
    prepare(settings, progress=False)
    return settings


@pytest.fixture(scope="module")
def api(wf_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(wf_settings)) as client:
        yield client


def chat(api: TestClient, model: str, content: str = "What is 5+3?") -> Any:
    body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 8}
    return api.post("/v1/chat/completions", json=body)


def test_admin_workflows_need_the_key(api: TestClient) -> None:
    assert api.get("/admin/workflows").status_code == 401
    assert api.get("/admin/workflows", headers={"X-API-Key": "wrong"}).status_code == 401
    assert api.get("/admin/workflows", headers=AUTH).status_code == 200


def test_schema_endpoint(api: TestClient) -> None:
    schema = api.get("/admin/workflows/schema", headers=AUTH).json()
    assert schema["title"] == "WorkflowSpec" and "steps" in schema["properties"]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ("name: [oops\n", 400, "body"),
        ("name: x\nsteps:\n - {type: teleport, id: t, expert: smollm2}\n", 400, "steps.0.type"),
        (
            "name: x\nsteps:\n - {type: verify, id: c, expert: smollm2}\n"
            " - {type: refine, id: f, expert: smollm2, goto: c}\n",
            400,
            "steps.1.max_rounds",
        ),
        ("name: x\naggregator: {type: best-of, judge: nobody}\n", 422, "aggregator.judge"),
        ("name: x\nrouting: {k: 12}\n", 422, "routing.k"),
        ("name: auto\n", 409, "name"),
        ("", 400, "body"),
    ],
)
def test_bad_workflows_are_refused_at_save_time(api: TestClient, body: str, status: int, param: str) -> None:
    response = api.post("/admin/workflows", content=body.encode(), headers=YAML)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param
    assert api.get("/admin/workflows/x", headers=AUTH).status_code == 404  # nothing half-written


def test_yaml_workflow_runs_end_to_end_through_chat_completions(api: TestClient) -> None:
    assert api.post("/admin/workflows/validate", content=CAREFUL.encode(), headers=YAML).json()["valid"] is True
    saved = api.post("/admin/workflows", content=CAREFUL.encode(), headers=YAML)
    assert saved.status_code == 201, saved.text
    assert api.post("/admin/workflows", content=CAREFUL.encode(), headers=YAML).status_code == 409
    assert [w["name"] for w in api.get("/admin/workflows", headers=AUTH).json()] == ["careful"]
    assert "moe:careful" in [m["id"] for m in api.get("/v1/models").json()["data"]]

    response = chat(api, "moe:careful")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "moe:careful" and body["choices"][0]["message"]["content"]
    routing = body["routing"]
    names = [n["node"] for n in routing["nodes"]]
    assert names[:4] == ["route", "call_experts", "aggregate", "verify.check"]
    assert names.count("refine.fix") <= 1 and set(names) <= {"route", "call_experts", "aggregate", "verify.check",
                                                             "refine.fix"}  # fmt: skip
    assert routing["strategy"] == "fixed" and routing["aggregator"] == "synthesis"
    assert routing["nodes"][2]["outputs"]["synthesizer"] == "smollm2"
    assert all({"inputs", "outputs", "ms"} <= set(n) for n in routing["nodes"])
    # The synthesis and the check cost tokens too.
    expert_tokens = sum(a["completion_tokens"] for a in routing["answers"])
    assert body["usage"]["completion_tokens"] > expert_tokens


def test_workflow_answers_stream_with_the_trace_in_the_last_chunk(api: TestClient) -> None:
    flow = "name: solo\nrouting: {experts: [smollm2]}\naggregator: {type: pass-through}\n"
    assert api.post("/admin/workflows", content=flow.encode(), headers=YAML).status_code == 201
    body = {"model": "moe:solo", "stream": True, "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 6}
    with api.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    last = json.loads(events[-2])
    assert [n["node"] for n in last["routing"]["nodes"]] == ["route", "call_experts", "aggregate"]
    assert last["model"] == "moe:solo"


def test_unknown_workflow_is_a_404_naming_the_model(api: TestClient) -> None:
    response = chat(api, "moe:no-such-flow")
    assert response.status_code == 404 and response.json()["error"]["param"] == "model"


def test_batch_lines_may_name_a_workflow(api: TestClient) -> None:
    flow = "name: voters\nrouting: {experts: [math-lora, smollm2]}\naggregator: {type: majority-vote}\n"
    assert api.post("/admin/workflows", content=flow.encode(), headers=YAML).status_code == 201
    question = "What is 9 plus 4?"
    online = chat(api, "moe:voters", question).json()
    lines = [
        batch_line("by-workflow", "moe:voters", question, 8),
        batch_line("missing", "moe:no-such-flow", question, 8),
        batch_line("by-expert", "math-lora", question, 8),
    ]
    done = wait_batch(api, create_batch(api, upload(api, lines))["id"], ("completed",))
    assert done["request_counts"] == {"total": 3, "completed": 2, "failed": 1}

    outputs = {o["custom_id"]: o["response"]["body"] for o in jsonl_file(api, done["output_file_id"])}
    assert list(outputs) == ["by-workflow", "by-expert"]
    body = outputs["by-workflow"]
    assert body["model"] == "moe:voters" and body["routing"]["aggregator"] == "majority-vote"
    assert [n["node"] for n in body["routing"]["nodes"]] == ["route", "call_experts", "aggregate"]
    assert [a["expert"] for a in body["routing"]["answers"]] == ["math-lora", "smollm2"]
    # Same greedy answer as the online query: the batch runs the same graph.
    assert body["choices"][0]["message"]["content"] == online["choices"][0]["message"]["content"]
    assert outputs["by-expert"]["routing"]["strategy"] == "direct"

    errors = jsonl_file(api, done["error_file_id"])
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [("missing", "not_found_error")]
    assert "moe:no-such-flow" in errors[0]["error"]["message"]


def _registry(api: TestClient, action: Any) -> Any:
    runtime = api.app.state.runtime  # type: ignore[attr-defined]
    with session_scope(runtime.sessions) as session:
        return action(runtime.repository(session))


def test_failing_aggregator_expert_falls_back_and_says_so(api: TestClient) -> None:
    # A real remote expert whose server is down: litellm gets "connection refused".
    dead = ExpertSpec(
        name="flaky-remote", kind=ExpertKind.litellm, litellm_model="openai/gone",
        api_base=f"http://127.0.0.1:{free_port()}/v1",
    )  # fmt: skip
    _registry(api, lambda repo: repo.add(dead))
    try:
        flow = (
            "name: fragile\nrouting: {experts: [math-lora, smollm2]}\n"
            "aggregator: {type: synthesis, expert: flaky-remote}\n"
        )
        assert api.post("/admin/workflows", content=flow.encode(), headers=YAML).status_code == 201
        response = chat(api, "moe:fragile", "What is 2+2? Reply with the number.")
        assert response.status_code == 200, response.text
        routing = response.json()["routing"]
        fallback = routing["nodes"][2]["outputs"]["fallback"]
        assert fallback["from"] == "synthesis" and fallback["to"] in {"majority-vote", "pass-through"}
        assert "flaky-remote" in fallback["reason"] and routing["aggregator"] == fallback["to"]

        _registry(api, lambda repo: repo.update("flaky-remote", ExpertUpdate(enabled=False)))
        refused = chat(api, "moe:fragile")
        assert refused.status_code == 422 and refused.json()["error"]["param"] == "aggregator.expert"
    finally:
        _registry(api, lambda repo: repo.remove("flaky-remote"))
    assert api.delete("/admin/workflows/fragile", headers=AUTH).status_code == 204
    assert chat(api, "moe:fragile").status_code == 404


def test_cli_add_list_validate_schema(wf_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOE_DATA_DIR", str(wf_settings.data_dir))
    monkeypatch.setenv("MOE_MODEL_DIR", str(wf_settings.model_dir))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        good = tmp_path / "vote.yaml"
        good.write_text("name: cli-vote\nrouting: {k: 2}\naggregator: {type: majority-vote}\n")
        assert runner.invoke(cli, ["workflows", "validate", str(good)]).exit_code == 0
        added = runner.invoke(cli, ["workflows", "add", str(good)])
        assert added.exit_code == 0, added.output
        listed = json.loads(runner.invoke(cli, ["workflows", "list", "--json"]).output)
        assert "cli-vote" in [w["name"] for w in listed]
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"name": "b", "steps": [{"type": "verify", "id": "v", "expert": "missing"}]}))
        refused = runner.invoke(cli, ["workflows", "add", str(bad)])
        assert refused.exit_code == 2 and "steps.0.expert" in refused.output
        schema = json.loads(runner.invoke(cli, ["workflows", "schema"]).output)
        assert schema["title"] == "WorkflowSpec"
        missing = runner.invoke(cli, ["workflows", "run", "nope", "hi"])
        assert missing.exit_code == 2 and "no workflow named 'nope'" in missing.output

        rows = tmp_path / "validation.jsonl"
        rows.write_text("\n".join(json.dumps(r) for r in _validation_rows(wf_settings, 20)))
        calibrated = runner.invoke(cli, ["workflows", "calibrate", str(rows)])
        assert calibrated.exit_code == 0, calibrated.output
        stored = json.loads(runner.invoke(cli, ["workflows", "choices"]).output)
        assert stored["gsm8k"]["samples"] == 20 and stored["gsm8k"]["aggregator"] in {"pass-through", "majority-vote"}
        assert stored == json.loads(calibrated.output)
        rows.write_text('{"task": "t", "question": "q"}\n')
        broken = runner.invoke(cli, ["workflows", "calibrate", str(rows)])
        assert broken.exit_code == 2 and "line 1" in broken.output
    finally:
        get_settings.cache_clear()


def _validation_rows(settings: Settings, n: int) -> list[dict[str, Any]]:
    """Real GPT-4 and Mixtral GSM8K answers (RouteLLM outcomes) as calibration rows."""
    path = settings.seed_data_dir / "routellm_outcomes_dev.jsonl"
    found = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row["benchmark"] == "gsm8k":
            answers = [{"expert": m, "weight": 0.5, "text": t} for m, t in row["responses"].items()]
            found.append({"task": "gsm8k", "question": row["query"], "gold": row["gold"], "answers": answers})
        if len(found) == n:
            return found
    pytest.fail(f"fewer than {n} GSM8K rows in {path}")
