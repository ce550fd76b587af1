"""OpenAI's Batch API: create a job from an uploaded JSONL file, follow it, cancel it, list jobs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from openai.types import Batch as BatchObject
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.batch import BatchService
from agents.workflow_spec import WorkflowSpec
from api.deps import BatchesDep, RuntimeDep
from api.models import resolve, stored_workflows
from api.routes.chat import generation_request
from api.schemas import ChatCompletionRequest
from core.errors import InvalidRequest, MoEError
from core.settings import Settings
from workers.files import FileStore
from workers.models import Batch
from workers.store import LineItem, RequestCounts
from workers.wire import error_to_json, request_to_json

router = APIRouter(tags=["batches"])
ENDPOINT = "/v1/chat/completions"


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_file_id: str = Field(min_length=1)
    endpoint: Literal["/v1/chat/completions"]
    completion_window: Literal["24h"] = "24h"
    metadata: dict[str, str] | None = Field(default=None, max_length=16)


class LineRefused(Exception):
    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def _body_error(exc: ValidationError) -> LineRefused:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    return LineRefused("invalid_request", f"body.{loc}: {first['msg']}", f"body.{loc}")


FindWorkflow = Callable[[str], WorkflowSpec | None]


def parse_line(raw: str, settings: Settings, find_workflow: FindWorkflow) -> tuple[str, dict[str, Any]]:
    """One input line -> (custom_id, normalised request with its target); raises LineRefused with the reason."""
    try:
        line = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LineRefused("invalid_json", f"the line is not valid JSON: {exc}") from exc
    if not isinstance(line, dict):
        raise LineRefused("invalid_json", "the line must be a JSON object")
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise LineRefused("missing_custom_id", "custom_id must be a non-empty string", "custom_id")
    if line.get("method", "POST") != "POST":
        raise LineRefused("invalid_method", "method must be POST", "method")
    if line.get("url") != ENDPOINT:
        raise LineRefused("invalid_url", f"url must be {ENDPOINT}, the batch's endpoint", "url")
    try:
        body = ChatCompletionRequest.model_validate(line.get("body"))
    except ValidationError as exc:
        raise _body_error(exc) from exc
    try:
        target = resolve(body.model, find_workflow)
        request = generation_request(body, settings)
    except MoEError as exc:
        raise LineRefused(exc.code or exc.error_type, exc.message, exc.param and f"body.{exc.param}") from exc
    return custom_id, {**request_to_json(request), "model": body.model, "target": target.to_json(), "k": body.k}


def parse_input(
    content: str, settings: Settings, find_workflow: FindWorkflow
) -> tuple[list[LineItem], list[dict[str, Any]]]:
    """Valid lines become work; refused lines become error-file entries, and the rest still run."""
    items: list[LineItem] = []
    refused: list[dict[str, Any]] = []
    seen: set[str] = set()
    lines = [(n, raw) for n, raw in enumerate(content.splitlines(), start=1) if raw.strip()]
    if len(lines) > settings.max_batch_lines:
        raise InvalidRequest(f"the file has {len(lines)} requests; at most {settings.max_batch_lines} are allowed",
                             param="input_file_id")  # fmt: skip
    for n, raw in lines:
        try:
            custom_id, request = parse_line(raw, settings, find_workflow)
            if custom_id in seen:
                raise LineRefused("duplicate_custom_id", f"custom_id '{custom_id}' appears more than once", "custom_id")
        except LineRefused as exc:
            error = error_to_json(InvalidRequest(exc.message, param=exc.param, code=exc.code))
            refused.append({**error, "line": n, "custom_id": _custom_id_of(raw)})
            continue
        seen.add(custom_id)
        items.append(LineItem(n, custom_id, request))
    return items, refused


def _custom_id_of(raw: str) -> str | None:
    try:
        value = json.loads(raw).get("custom_id")
    except (json.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def batch_object(batch: Batch, counts: RequestCounts) -> dict[str, Any]:
    def ts(value: Any) -> int | None:
        return int(value.timestamp()) if value else None

    return BatchObject(
        id=batch.id, object="batch", endpoint=batch.endpoint, input_file_id=batch.input_file_id,
        completion_window=batch.completion_window, status=batch.status, created_at=ts(batch.created_at),
        in_progress_at=ts(batch.in_progress_at), finalizing_at=ts(batch.finalizing_at),
        completed_at=ts(batch.completed_at), cancelling_at=ts(batch.cancelling_at),
        cancelled_at=ts(batch.cancelled_at), failed_at=ts(batch.failed_at),
        output_file_id=batch.output_file_id, error_file_id=batch.error_file_id, metadata=batch.meta,
        request_counts={"total": counts.total, "completed": counts.completed, "failed": counts.failed},
    ).model_dump(exclude_none=True)  # fmt: skip


async def _describe(service: BatchService, batch_id: str) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        return batch_object(service.store.get(batch_id), service.store.counts(batch_id))

    return await asyncio.to_thread(read)


@router.post("/v1/batches")
async def create_batch(body: BatchCreate, runtime: RuntimeDep, service: BatchesDep) -> dict[str, Any]:
    source = await asyncio.to_thread(FileStore(runtime.sessions).get, body.input_file_id, "input_file_id")
    if source.purpose != "batch":
        raise InvalidRequest(f"file '{source.id}' has purpose '{source.purpose}', not 'batch'", param="input_file_id")
    workflows = await asyncio.to_thread(stored_workflows, runtime)  # read once, not once per line
    items, refused = await asyncio.to_thread(parse_input, source.content, runtime.settings, workflows.get)
    batch = await asyncio.to_thread(
        service.store.create, source.id, body.endpoint, body.completion_window, items, refused, body.metadata
    )
    service.start(batch.id)
    return await _describe(service, batch.id)


@router.get("/v1/batches/{batch_id}")
async def get_batch(batch_id: str, service: BatchesDep) -> dict[str, Any]:
    return await _describe(service, batch_id)


@router.post("/v1/batches/{batch_id}/cancel")
async def cancel_batch(batch_id: str, service: BatchesDep) -> dict[str, Any]:
    await asyncio.to_thread(service.store.request_cancel, batch_id)
    return await _describe(service, batch_id)


@router.get("/v1/batches")
async def list_batches(
    service: BatchesDep, limit: Annotated[int, Query(ge=1, le=100)] = 20, after: str | None = None
) -> dict[str, Any]:
    def read() -> list[dict[str, Any]]:
        return [batch_object(b, service.store.counts(b.id)) for b in service.store.list(limit + 1, after)]

    data = await asyncio.to_thread(read)
    page = data[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(data) > limit,
    }
