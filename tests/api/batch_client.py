"""Driving the Batch API from a test client: upload a JSONL file, create a job, wait, read the files."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.testclient import TestClient


def batch_line(custom_id: str, model: str, content: str, max_tokens: int = 6, **extra: Any) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens, **extra}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body})


def upload(client: TestClient, lines: list[str]) -> str:
    files = {"file": ("in.jsonl", "\n".join(lines) + "\n", "application/jsonl")}
    response = client.post("/v1/files", files=files, data={"purpose": "batch"})
    assert response.status_code == 200, response.text
    assert response.json()["purpose"] == "batch"
    return response.json()["id"]


def create_batch(client: TestClient, file_id: str) -> dict[str, Any]:
    response = client.post(
        "/v1/batches", json={"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def wait_batch(client: TestClient, batch_id: str, statuses: tuple[str, ...], timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.get(f"/v1/batches/{batch_id}").json()
        if batch["status"] in statuses:
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} still {batch['status']}")


def jsonl_file(client: TestClient, file_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/files/{file_id}/content")
    assert response.status_code == 200
    return [json.loads(line) for line in response.text.splitlines()]
