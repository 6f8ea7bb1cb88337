"""Prometheus metrics at GET /metrics, from a registry owned by the app (no global state).

HTTP requests are counted by a middleware; execution counts come from the database at scrape
time, so runs on RQ workers are counted as well as inline ones.
"""

from __future__ import annotations

import re
import time

from pasar_core.storage.models import Execution
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ID_SEGMENT = re.compile(r"/[0-9a-fA-F-]{32,36}(?=/|$)")


def route_label(path: str) -> str:
    """Paths with ids collapsed, so label values stay few: /agents/{id}/execute; the browser
    pages' files are one label (their paths change with every release's digest)."""
    if path.startswith("/static/"):
        return "/static/{file}"
    return ID_SEGMENT.sub("/{id}", path)[:100]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "pasar_http_requests", "HTTP requests", ["method", "route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "pasar_http_request_seconds", "HTTP request latency", ["method", "route"],
            registry=self.registry,
        )  # fmt: skip
        self.executions = Gauge(
            "pasar_executions", "Executions by status (all processes)", ["status"],
            registry=self.registry,
        )  # fmt: skip
        self.inline_running = Gauge(
            "pasar_inline_executions_in_process", "Runs held by this process's inline executor",
            registry=self.registry,
        )  # fmt: skip
        self.tools = Gauge("pasar_tools", "Installed tools", registry=self.registry)

    async def endpoint(self, request: Request) -> Response:
        services = request.state.services
        async with services.sessionmaker() as session:
            rows = await session.execute(
                select(Execution.status, func.count()).group_by(Execution.status)
            )
            for status, count in rows:
                self.executions.labels(status=status).set(count)
        runs = getattr(request.state, "runs", None)
        if runs is not None and runs.inline is not None:
            self.inline_running.set(runs.inline.running)
        self.tools.set(len(services.registry.tools))
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts and times every HTTP request (websockets and lifespan pass through)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            method, route = scope["method"], route_label(scope["path"])
            self.metrics.requests.labels(method=method, route=route, status=str(status)).inc()
            self.metrics.latency.labels(method=method, route=route).observe(
                time.perf_counter() - started
            )
