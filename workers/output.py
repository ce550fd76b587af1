"""The output and error files of a batch, in the input's line order, written once at the end."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from workers.files import add_file
from workers.models import Batch, BatchRequest, utcnow
from workers.store import TERMINAL

CANCELLED = {"code": "batch_cancelled", "message": "the batch was cancelled before this request ran"}


def request_line_id(batch_id: str, custom_id: str) -> str:
    return "batch_req_" + hashlib.sha1(f"{batch_id}\0{custom_id}".encode()).hexdigest()[:24]


def output_line(batch_id: str, custom_id: str, body: dict[str, Any]) -> dict[str, Any]:
    rid = request_line_id(batch_id, custom_id)
    return {"id": rid, "custom_id": custom_id, "response": {"status_code": 200, "request_id": rid, "body": body},
            "error": None}  # fmt: skip


def error_line(batch_id: str, custom_id: str | None, error: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's error-file line: the HTTP answer the request would have had, plus a short code and reason."""
    rid = request_line_id(batch_id, custom_id or "")
    code = error.get("code") or error.get("error_type") or "invalid_request_error"
    body = {"error": {"message": error["message"], "type": error.get("error_type", "invalid_request_error"),
                      "param": error.get("param"), "code": error.get("code")}}  # fmt: skip
    return {
        "id": rid,
        "custom_id": custom_id,
        "response": {"status_code": int(error.get("status_code", 400)), "request_id": rid, "body": body},
        "error": {"code": code, "message": error["message"]},
    }


def _jsonl(lines: list[tuple[int, dict[str, Any]]]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for _, line in sorted(lines, key=lambda x: x[0]))


def render(batch: Batch, rows: list[BatchRequest]) -> tuple[str, str]:
    outputs: list[tuple[int, dict[str, Any]]] = []
    errors = [(e["line"], error_line(batch.id, e.get("custom_id"), e)) for e in batch.line_errors]
    for row in rows:
        if row.status == "done" and row.response is not None:
            outputs.append((row.line_no, output_line(batch.id, row.custom_id, row.response)))
        else:
            errors.append((row.line_no, error_line(batch.id, row.custom_id, row.error or CANCELLED)))
    return _jsonl(outputs), _jsonl(errors)


def write_output(sessions: sessionmaker[Session], batch_id: str, final_status: str) -> None:
    """Files and the final status in one transaction: a crash here leaves the batch resumable, not half-done.

    The status is claimed with a conditional update first, so two processes finishing the same batch
    (say, two API replicas that both resumed it) write its files once.
    """
    with session_scope(sessions) as session:
        claim = (
            update(Batch)
            .where(Batch.id == batch_id, Batch.status.not_in(TERMINAL))
            .values(status=final_status, **{f"{final_status}_at": utcnow()})
        )
        if session.execute(claim).rowcount != 1:
            return
        batch = session.get(Batch, batch_id)
        assert batch is not None
        rows = list(
            session.scalars(
                select(BatchRequest).where(BatchRequest.batch_id == batch_id).order_by(BatchRequest.line_no)
            )
        )
        output, errors = render(batch, rows)
        files: dict[str, Any] = {}
        if output:
            files["output_file_id"] = add_file(session, "batch_output", f"{batch_id}_output.jsonl", output).id
        if errors:
            files["error_file_id"] = add_file(session, "batch_output", f"{batch_id}_error.jsonl", errors).id
        if files:
            session.execute(update(Batch).where(Batch.id == batch_id).values(**files))
