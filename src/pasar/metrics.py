"""Prometheus metrics at GET /metrics, from the instruments of the app's `Services`.

HTTP requests are counted and timed by a middleware, labelled by the route template the router
matched (`/agents/{agent_id}`), never the raw path: paths no route matches are `unmatched`, the
files under a mount are one label. What the database and queues know (executions by status,
queue depth) is read at scrape time, so runs on RQ workers are counted as well as inline ones.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pasar_core.executions.status import ExecutionStatus
from pasar_core.observability.metrics import Metrics, status_class
from pasar_core.observability.pools import READS_POOL
from pasar_core.observability.tracing import Tracing, current_span
from pasar_core.services import Services
from pasar_core.storage.models import Execution
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
INLINE_QUEUE = "executions"


def route_label(scope: Scope) -> str:
    """The template of the route the router matched (also when only the path matched: 405),
    `unmatched` when none did; a mount's files (the pages' static files) are one label."""
    route: BaseRoute | None = scope.get("route")
    if isinstance(route, Mount):
        return f"{route.path}/{{file}}"
    if isinstance(route, Route | WebSocketRoute):
        return route.path
    return UNMATCHED


async def metrics_endpoint(request: Request) -> Response:
    services: Services = request.state.services
    await collect(services, getattr(request.state, "runs", None))
    body = generate_latest(services.metrics.scrape_registry())
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def collect(services: Services, runs: Any) -> None:
    """What is read rather than counted: executions by status, queue depth, the read pool."""
    metrics = services.metrics
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(Execution.status, func.count()).group_by(Execution.status)
        )
        counts = {str(status): int(count) for status, count in rows}
    for status in ExecutionStatus:
        metrics.executions.labels(status=status.value).set(counts.get(status.value, 0))
    rq = getattr(runs, "rq", None)
    if rq is not None:
        metrics.queue_depth.labels(queue=rq.queue.name).set(await asyncio.to_thread(rq.depth))
    else:
        queued = counts.get(ExecutionStatus.QUEUED.value, 0)
        metrics.queue_depth.labels(queue=INLINE_QUEUE).set(queued)
    if services.sandbox_queue is not None:
        try:
            depth = await asyncio.to_thread(services.sandbox_queue.depth)
        except Exception:  # an unreachable sandbox Redis is its own alert (readyz), not a 500
            depth = None
        if depth is not None:
            metrics.queue_depth.labels(queue="sandbox").set(depth)
    inline = getattr(runs, "inline", None)
    if inline is not None:
        metrics.inline_running.set(inline.running)
    if services.reads is not None:
        for state, value in services.reads.pool_use().items():
            metrics.pool_connections.labels(pool=READS_POOL, state=state).set(value)
    metrics.tools.set(len(services.registry.tools))


class MetricsMiddleware:
    """Counts and times every HTTP request (websockets and lifespan pass through), and names
    the request's trace span by its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics, tracing: Tracing) -> None:
        self.app = app
        self.metrics = metrics
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        span = current_span() if self.tracing.enabled else None  # the request's, from outside

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if span is not None:  # routed by now; the span may end with the body
                    route = route_label(scope)
                    span.update_name(f"{scope['method']} {route}")
                    span.set_attribute("http.route", route)
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            method, route = scope["method"], route_label(scope)
            metrics = self.metrics
            metrics.http_requests.labels(method=method, route=route, status=str(status)).inc()
            if status >= 400:
                metrics.http_errors.labels(
                    method=method, route=route, status_class=status_class(status)
                ).inc()
            metrics.http_latency.labels(method=method, route=route).observe(
                time.perf_counter() - started
            )
