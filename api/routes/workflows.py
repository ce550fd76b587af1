"""/admin/workflows: declarative workflows over HTTP, behind the admin key.

Bodies are YAML or JSON (YAML is a superset); a definition is checked against the registry
before it is stored, so a saved workflow can run. Invoke one as model `moe:<name>`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response

from agents.runtime import Runtime
from agents.workflow_spec import parse_workflow, workflow_json_schema
from agents.workflow_store import WorkflowOut, WorkflowRepository
from api.deps import RuntimeDep
from api.security import AdminDep
from core.db import session_scope
from core.errors import InvalidRequest

router = APIRouter(prefix="/admin/workflows", tags=["admin", "workflows"], dependencies=[AdminDep])
T = TypeVar("T")
MAX_BODY_BYTES = 256 * 1024


async def _in_store(runtime: Runtime, action: Callable[[WorkflowRepository], T]) -> T:
    def run() -> T:
        with session_scope(runtime.sessions) as session:
            return action(WorkflowRepository(session))

    return await asyncio.to_thread(run)


async def _definition(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise InvalidRequest(f"a workflow definition may be at most {MAX_BODY_BYTES} bytes", param="body")
    try:
        return parse_workflow(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidRequest("the body must be UTF-8 text (YAML or JSON)", param="body") from exc


@router.get("")
async def list_workflows(runtime: RuntimeDep) -> list[WorkflowOut]:
    return await _in_store(runtime, lambda repo: repo.list())


@router.get("/schema")
async def schema() -> dict[str, Any]:
    return workflow_json_schema()


@router.post("/validate")
async def validate_workflow(request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    spec = await _definition(request)
    await _in_store(runtime, lambda repo: repo.validate(spec))
    return {"valid": True, "workflow": spec.model_dump(mode="json", exclude_none=True)}


@router.post("", status_code=201)
async def add_workflow(request: Request, runtime: RuntimeDep) -> WorkflowOut:
    spec = await _definition(request)
    return await _in_store(runtime, lambda repo: repo.save(spec))


@router.get("/{name}")
async def get_workflow(name: str, runtime: RuntimeDep) -> WorkflowOut:
    return await _in_store(runtime, lambda repo: repo.get(name))


@router.put("/{name}")
async def replace_workflow(name: str, request: Request, runtime: RuntimeDep) -> WorkflowOut:
    spec = await _definition(request)
    if spec.name != name:
        raise InvalidRequest(f"name: the body names '{spec.name}' but the path names '{name}'", param="name")
    return await _in_store(runtime, lambda repo: repo.save(spec, replace=True))


@router.delete("/{name}", status_code=204)
async def remove_workflow(name: str, runtime: RuntimeDep) -> Response:
    await _in_store(runtime, lambda repo: repo.remove(name))
    return Response(status_code=204)
