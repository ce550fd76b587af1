"""The FastAPI application: heavy objects are built once in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import core.env  # noqa: F401  (offline defaults before heavy imports)
from agents.graph import QueryGraph
from agents.runtime import Runtime
from api.errors import install_error_handlers
from api.routes import catalog, chat, feedback
from core.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await asyncio.to_thread(Runtime.build, settings)
        app.state.runtime = runtime
        app.state.graph = QueryGraph(runtime)
        yield
        await runtime.aclose()

    app = FastAPI(title="moe-router", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(chat.router)
    app.include_router(catalog.router)
    app.include_router(feedback.router)
    return app
