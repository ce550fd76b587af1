"""GET /v1/models, POST /v1/route, GET /healthz."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from openai.types import Model

from agents.workflow_store import WorkflowRepository
from api.deps import BareRoute, RuntimeDep, get_runtime, json_body, json_body_docs
from api.models import MOE_PREFIX, resolve_model, routing_models
from api.schemas import RouteRequest
from core.db import session_scope
from core.errors import InvalidRequest
from router.decision import RoutingDecision

router = APIRouter()
hot_router = APIRouter(route_class=BareRoute)  # the routing hot path: see BareRoute


@router.get("/v1/models", tags=["models"])
async def list_models(runtime: RuntimeDep) -> dict[str, Any]:
    experts = await asyncio.to_thread(runtime.enabled_experts)
    now = int(time.time())
    data = [Model(id=m, object="model", created=now, owned_by="moe-router") for m in routing_models()]
    data += [
        Model(id=e.name, object="model", created=int(e.created_at.timestamp()), owned_by=f"moe-router:{e.kind}")
        for e in experts.values()
    ]
    data += [
        Model(id=MOE_PREFIX + name, object="model", created=now, owned_by="moe-router:workflow")
        for name in await asyncio.to_thread(_workflow_names, runtime)
    ]
    return {"object": "list", "data": [m.model_dump() for m in data]}


def _workflow_names(runtime: RuntimeDep) -> list[str]:
    with session_scope(runtime.sessions) as session:
        return [w.name for w in WorkflowRepository(session).list()]


@hot_router.post(
    "/v1/route", tags=["routing"], response_model=RoutingDecision, openapi_extra=json_body_docs(RouteRequest)
)
async def route(request: Request) -> Response:
    body = await json_body(request, RouteRequest)
    runtime = await get_runtime(request)
    target = resolve_model(body.model)
    if target.expert:
        raise InvalidRequest("/v1/route takes a routing model (moe:auto or moe:<strategy>)", param="model")
    await runtime.aenabled_experts()  # refits first if the registry changed
    # aroute: concurrent requests share one encoder call (micro-batched), no thread per request.
    decision = await runtime.router.aroute(body.query, target.strategy, body.k)
    # Serialised here: the router built a valid decision, and FastAPI would validate it again (15% of this
    # endpoint's event-loop time under load). `response_model` keeps it documented.
    return Response(decision.model_dump_json(), media_type="application/json")


@router.get("/healthz", tags=["health"])
async def healthz(runtime: RuntimeDep) -> dict[str, Any]:
    experts = await asyncio.to_thread(runtime.enabled_experts)
    return {"status": "ok", "experts": len(experts)}
