"""Prometheus metrics: request counts and latencies per route, expert selections per expert."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        # One registry per app, so several apps in one process (tests) never collide.
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "moe_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "moe_http_request_seconds", "HTTP request latency", ["method", "route"], registry=self.registry
        )
        self.expert_calls = Counter(
            "moe_expert_selections", "Times an expert was chosen to answer", ["expert", "strategy"],
            registry=self.registry,
        )  # fmt: skip
        self.tokens = Counter("moe_completion_tokens", "Tokens generated", ["expert"], registry=self.registry)

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI) -> Metrics:
    metrics = Metrics()
    app.state.metrics = metrics

    @app.middleware("http")
    async def _observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.requests.labels(request.method, path, str(response.status_code)).inc()
        metrics.latency.labels(request.method, path).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics", include_in_schema=False)
    async def _metrics() -> Response:
        return metrics.render()

    return metrics
