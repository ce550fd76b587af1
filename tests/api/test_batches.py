from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli import app as cli
from core.settings import Settings
from tests.api.batch_client import batch_line, create_batch, jsonl_file, upload, wait_batch
from tests.conftest import LiveServer


def test_batch_runs_good_lines_in_order_and_reports_bad_ones(client: TestClient) -> None:
    good = [
        batch_line("q-math", "math-lora", "What is 12 plus 30?"),
        batch_line("q-auto", "moe:auto", "Which treaty ended the First World War?"),
        batch_line("q-chat", "smollm2", "Say hello to me."),
        batch_line("q-know", "knowledge-lora", "Who wrote Pride and Prejudice?"),
    ]
    lines = [
        good[0],
        "{this is not json",
        good[1],
        batch_line("q-unknown-expert", "no-such-expert", "hello"),
        batch_line("q-unknown-router", "moe:nonsense", "hello"),
        good[2],
        batch_line("q-long", "smollm2", "word " * 8300),
        batch_line("q-math", "smollm2", "duplicate id"),
        batch_line("q-bad-body", "smollm2", "hi", max_tokens=0),
        good[3],
    ]
    batch = create_batch(client, upload(client, lines))
    assert batch["status"] in ("in_progress", "finalizing", "completed")
    done = wait_batch(client, batch["id"], ("completed",))
    assert done["request_counts"] == {"total": 10, "completed": 4, "failed": 6}

    outputs = jsonl_file(client, done["output_file_id"])
    assert [o["custom_id"] for o in outputs] == ["q-math", "q-auto", "q-chat", "q-know"]
    assert all(o["response"]["status_code"] == 200 and o["error"] is None for o in outputs)
    first = outputs[0]["response"]["body"]
    assert first["object"] == "chat.completion" and first["routing"]["experts"][0]["name"] == "math-lora"

    errors = {(e["custom_id"], e["error"]["code"]): e for e in jsonl_file(client, done["error_file_id"])}
    codes = {code for _, code in errors}
    assert {"invalid_json", "duplicate_custom_id"} <= codes
    reasons = {cid: e["error"]["message"] for (cid, _), e in errors.items()}
    assert "no-such-expert" in reasons["q-unknown-expert"]
    assert "moe:nonsense" in reasons["q-unknown-router"]
    assert "exceeds the model's context" in reasons["q-long"]
    assert "max_tokens" in reasons["q-bad-body"]
    assert errors[("q-unknown-expert", "not_found_error")]["response"]["status_code"] == 404


def test_batch_answer_matches_the_online_answer(client: TestClient) -> None:
    content = "What is 7 times 6?"
    online = client.post(
        "/v1/chat/completions",
        json={"model": "math-lora", "messages": [{"role": "user", "content": content}], "max_tokens": 8},
    ).json()
    # The same line shares its batch with other experts' lines: its greedy answer must not change.
    lines = [batch_line(f"pad-{i}", "knowledge-lora", f"Name a famous scientist, number {i}.", 8) for i in range(3)]
    lines.insert(1, batch_line("target", "math-lora", content, 8))
    done = wait_batch(client, create_batch(client, upload(client, lines))["id"], ("completed",))
    by_id = {o["custom_id"]: o["response"]["body"] for o in jsonl_file(client, done["output_file_id"])}
    assert by_id["target"]["choices"][0]["message"]["content"] == online["choices"][0]["message"]["content"]


def test_cancel_stops_promptly_and_reports_what_finished(client: TestClient, settings: Settings) -> None:
    lines = [batch_line(f"c-{i}", "math-lora", f"Count from 1 to {i + 20} slowly.", 8) for i in range(96)]
    batch = create_batch(client, upload(client, lines))
    cancelled = client.post(f"/v1/batches/{batch['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] in ("cancelling", "cancelled")
    done = wait_batch(client, batch["id"], ("cancelled",), timeout=120)
    counts = done["request_counts"]
    # Promptly: at most the chunk already on the model finishes; no further chunk starts.
    assert counts["total"] == 96 and counts["completed"] <= settings.batch_chunk_size
    outputs = jsonl_file(client, done["output_file_id"]) if done.get("output_file_id") else []
    assert len(outputs) == counts["completed"]
    errors = jsonl_file(client, done["error_file_id"])
    assert len(errors) == 96 - counts["completed"]
    assert all(e["error"]["code"] == "batch_cancelled" for e in errors)
    again = client.post(f"/v1/batches/{batch['id']}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def test_batch_api_refuses_bad_input_naming_the_field(client: TestClient) -> None:
    files = {"file": ("x.jsonl", "{}\n", "application/jsonl")}
    wrong_purpose = client.post("/v1/files", files=files, data={"purpose": "fine-tune"})
    assert wrong_purpose.status_code == 400 and wrong_purpose.json()["error"]["param"] == "purpose"
    no_file = client.post("/v1/files", data={"purpose": "batch"})
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"
    not_utf8 = client.post("/v1/files", files={"file": ("x.jsonl", b"\xff\xfe", "application/jsonl")},
                           data={"purpose": "batch"})  # fmt: skip
    assert not_utf8.status_code == 400 and not_utf8.json()["error"]["param"] == "file"
    assert client.get("/v1/files/file-missing").status_code == 404
    assert client.get("/v1/files/file-missing/content").status_code == 404

    missing = client.post("/v1/batches", json={"input_file_id": "file-missing", "endpoint": "/v1/chat/completions"})
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "input_file_id"
    file_id = upload(client, [batch_line("a", "smollm2", "hi")])
    bad_endpoint = client.post("/v1/batches", json={"input_file_id": file_id, "endpoint": "/v1/embeddings"})
    assert bad_endpoint.status_code == 400 and bad_endpoint.json()["error"]["param"] == "endpoint"
    assert client.get("/v1/batches/batch_missing").status_code == 404
    assert client.post("/v1/batches/batch_missing/cancel").status_code == 404
    assert client.get("/v1/batches", params={"limit": 0}).status_code == 400


def test_list_batches_pages_newest_first(client: TestClient) -> None:
    file_id = upload(client, [batch_line("a", "smollm2", "hi", 2)])
    ids = [create_batch(client, file_id)["id"] for _ in range(3)]
    for batch_id in ids:
        wait_batch(client, batch_id, ("completed",))
    first = client.get("/v1/batches", params={"limit": 2}).json()
    assert [b["id"] for b in first["data"]] == ids[::-1][:2] and first["has_more"]
    second = client.get("/v1/batches", params={"limit": 2, "after": first["last_id"]}).json()
    assert second["data"][0]["id"] == ids[0]
    finished = client.get(f"/v1/batches/{ids[0]}").json()
    assert client.post(f"/v1/batches/{ids[0]}/cancel").status_code == 409
    assert finished["request_counts"] == {"total": 1, "completed": 1, "failed": 0}


def test_cli_submits_waits_and_downloads(live_server: LiveServer, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join([batch_line("x", "smollm2", "Say hi.", 3), "not json", batch_line("y", "math-lora", "1+1?", 3)])
    )
    runner = CliRunner()
    env = {"MOE_API_URL": live_server.url}
    submitted = runner.invoke(cli, ["batch", "submit", str(source)], env=env)
    assert submitted.exit_code == 0, submitted.output
    batch_id = submitted.stdout.strip()
    waited = runner.invoke(cli, ["batch", "wait", batch_id, "--poll", "0.2", "--timeout", "180"], env=env)
    assert waited.exit_code == 0, waited.output
    assert json.loads(waited.stdout.strip().splitlines()[-1]) == {"total": 3, "completed": 2, "failed": 1,
                                                                    "status": "completed"}  # fmt: skip
    out, errors = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    downloaded = runner.invoke(cli, ["batch", "download", batch_id, "-o", str(out), "--errors", str(errors)], env=env)
    assert downloaded.exit_code == 0, downloaded.output
    assert [json.loads(line)["custom_id"] for line in out.read_text().splitlines()] == ["x", "y"]
    assert json.loads(errors.read_text())["error"]["code"] == "invalid_json"
    status = runner.invoke(cli, ["batch", "status", batch_id], env=env)
    assert json.loads(status.stdout)["output_file_id"]
    missing = runner.invoke(cli, ["batch", "status", "batch_nope"], env=env)
    assert missing.exit_code == 2 and "no batch" in missing.output
