"""Dependencies: handlers reach the runtime built in the lifespan, never a module global.

They are `async def` because FastAPI runs a plain `def` dependency on a worker thread, one hop per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agents.batch import BatchService
from agents.graph import QueryGraph
from agents.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def get_graph(request: Request) -> QueryGraph:
    return request.app.state.graph


async def get_batches(request: Request) -> BatchService:
    return request.app.state.batches


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
GraphDep = Annotated[QueryGraph, Depends(get_graph)]
BatchesDep = Annotated[BatchService, Depends(get_batches)]
