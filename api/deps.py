"""Dependencies: handlers reach the runtime built in the lifespan, never a module global."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agents.graph import QueryGraph
from agents.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def get_graph(request: Request) -> QueryGraph:
    return request.app.state.graph


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
GraphDep = Annotated[QueryGraph, Depends(get_graph)]
