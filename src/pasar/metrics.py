"""Prometheus metrics at GET /metrics, from the instruments of the app's `Services`.

HTTP requests are counted and timed by a middleware, labelled by the route template the router
matched (`/agents/{agent_id}`), never the raw path: paths no route matches are `unmatched`, the
files under a mount are one label. What the database and queues know (executions by status,
queue depth) is read at scrape time, so runs on RQ workers are counted as well as inline ones.
With `PASAR_METRICS_PORT` the series are served on that port (`pasar.metrics_listener`) and the
public port's `/metrics` answers 404.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
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
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
INLINE_QUEUE = "executions"
ACTIVE = tuple(status.value for status in ExecutionStatus if not status.terminal)
FINISHED = tuple(status.value for status in ExecutionStatus if status.terminal)
FINISHED_COUNTS_TTL_S = 300.0


class ExecutionCounts:
    """Executions by status for the `pasar_executions` gauge. The active statuses are few rows,
    counted at each scrape through `ix_executions_status`; the finished ones are most of the
    table, so they are counted at most once every `ttl_s` (the gauge lags by that much; rates
    come from `pasar_runs_finished`, counted as runs end)."""

    def __init__(
        self, ttl_s: float = FINISHED_COUNTS_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._finished: dict[str, int] | None = None
        self._counted_at = 0.0

    async def read(self, session: AsyncSession) -> dict[str, int]:
        counts = await self._count(session, ACTIVE)
        now = self.clock()
        if self._finished is None or now - self._counted_at >= self.ttl_s:
            self._finished = await self._count(session, FINISHED)
            self._counted_at = now
        return {**self._finished, **counts}

    @staticmethod
    async def _count(session: AsyncSession, statuses: tuple[str, ...]) -> dict[str, int]:
        rows = await session.execute(
            select(Execution.status, func.count())
            .where(Execution.status.in_(statuses))
            .group_by(Execution.status)
        )
        return {str(status): int(count) for status, count in rows}


def route_label(scope: Scope) -> str:
    """The template of the route the router matched (also when only the path matched: 405),
    `unmatched` when none did; a mount's files (the pages' static files) are one label."""
    route: BaseRoute | None = scope.get("route")
    if isinstance(route, Mount):
        return f"{route.path}/{{file}}"
    if isinstance(route, Route | WebSocketRoute):
        return route.path
    return UNMATCHED


def metrics_endpoint(
    counts: ExecutionCounts, *, public: bool
) -> Callable[[Request], Awaitable[Response]]:
    """`/metrics` on the public port; with `public=False` (a metrics port is set) a 404."""

    async def endpoint(request: Request) -> Response:
        if not public:
            raise HTTPException(404)
        services: Services = request.state.services
        await collect(services, getattr(request.state, "runs", None), counts)
        body = generate_latest(services.metrics.scrape_registry())
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return endpoint


async def collect(services: Services, runs: Any, execution_counts: ExecutionCounts) -> None:
    """What is read rather than counted: executions by status, queue depth, the read pool."""
    metrics = services.metrics
    async with services.sessionmaker() as session:
        counts = await execution_counts.read(session)
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
