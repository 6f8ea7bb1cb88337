"""create_app(): the Starlette application with REST, GraphQL and health endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
from collections.abc import AsyncIterator
from importlib.metadata import version

import pluggy
from pasar_core.errors import PasarError
from pasar_core.observability.metrics import Metrics
from pasar_core.observability.tracing import Tracing, build_tracing
from pasar_core.services import Services
from pasar_core.settings import Settings
from pasar_graphql.app import build_graphql_app
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute

from pasar.body_limit import BodyLimit
from pasar.lifecycle import draining_on_signals, running_runs, running_services
from pasar.mcp_mount import McpMount
from pasar.metrics import ExecutionCounts, MetricsMiddleware, collect, metrics_endpoint
from pasar.metrics_listener import Scraped, metrics_listener
from pasar.openai_api.errors import by_surface
from pasar.openai_api.routes import openai_routes
from pasar.pages import Pages
from pasar.request_ids import RequestIds
from pasar.rest import errors
from pasar.rest.routes import rest_routes
from pasar.security_headers import SecurityHeaders

# What the first run needs and requests do not: LangChain, LangGraph and the runner (about half of
# the app's import time). Imported in a thread once the app serves, so start-up skips it and the
# first run does not pay it either.
RUN_MODULES = ("pasar_core.executions.runner",)


async def load_run_modules() -> None:
    for name in RUN_MODULES:
        await asyncio.to_thread(importlib.import_module, name)
    freeze_heap()


def freeze_heap() -> None:
    """Move what start-up built out of the garbage collector's sight, or every full collection
    walks it again (a pause of tens of milliseconds in the middle of requests, measured in
    bench/). Only the young generations are collected first: a full collection walks the whole
    heap, and in a process that starts many apps (the tests) it cost 0.3-0.9 s per start. The
    little garbage start-up leaves in the old generation is frozen with it, once."""
    gc.collect(1)
    gc.freeze()


def cors(settings: Settings) -> list[Middleware]:
    """CORS for the origins in `PASAR_CORS_ORIGINS` (none by default: no CORS headers at all).
    Credentials are headers (bearer tokens, API keys), never cookies, so none are allowed."""
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "Idempotency-Key",
                           "Last-Event-ID", "X-Request-ID"],
            expose_headers=["Retry-After", "Idempotent-Replayed", "X-Request-ID"],
            max_age=600,
        )
    ]  # fmt: skip


def traced(tracing: Tracing) -> list[Middleware]:
    """The request spans (outermost, so every other middleware runs inside them)."""
    if not tracing.enabled:
        return []
    return [Middleware(lambda app: tracing.wrap_asgi(app))]


def create_app(
    settings: Settings | None = None,
    pm: pluggy.PluginManager | None = None,
    tracing: Tracing | None = None,
) -> Starlette:
    """The ASGI app. Resources (database, plugins) live in the lifespan, not at import.
    `tracing`: where spans go (default: `build_tracing(settings)`, off unless configured)."""
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        mcp.start_loading()  # in a thread, while the database and plugins start
        with contextlib.ExitStack() as stack:
            stack.callback(spans.flush)  # last: the spans of shutting down too
            served = settings
            if settings.embedded_sandbox and not settings.sandbox_redis_url:
                from pasar.embedded_sandbox import embedded_sandbox

                sandbox = stack.enter_context(embedded_sandbox(settings.ensure_data_dir()))
                served = settings.with_overrides(sandbox_redis_url=sandbox.redis_url)
            async with (
                running_services(
                    served,
                    pm,
                    watch_revocations=True,
                    runs_agents=True,
                    metrics=metrics,
                    tracing=spans,
                ) as services,
                running_runs(services) as runs,
                mcp.running(),
            ):
                # What start-up built (modules, schema, registry) lives as long as the process.
                # Thawed when the app stops, so a process that outlives it (tests) can free it.
                freeze_heap()
                loading = asyncio.create_task(load_run_modules(), name="pasar-load-run-modules")
                try:
                    with draining_on_signals(runs), serving_metrics(services, runs):
                        yield {"services": services, "runs": runs}
                finally:
                    await loading
                    gc.unfreeze()
                    metrics.process_stopped()

    def serving_metrics(
        services: Services, runs: object
    ) -> contextlib.AbstractContextManager[object]:
        """The metrics port's listener, when `PASAR_METRICS_PORT` is set."""
        if settings.metrics_port is None:
            return contextlib.nullcontext()
        scraped = Scraped(
            services.metrics.scrape_registry,
            lambda: collect(services, runs, execution_counts),
            asyncio.get_running_loop(),
        )
        return metrics_listener(settings.host, settings.metrics_port, scraped)

    pages = Pages()
    graphql = build_graphql_app(
        dev_mode=settings.dev_mode,
        ide_html=pages.graphiql_html,
        direct_queries=settings.graphql_direct,
    )
    mcp = McpMount()
    metrics = Metrics()
    execution_counts = ExecutionCounts()
    spans: Tracing = tracing or build_tracing(settings)
    return Starlette(
        # Starlette tries routes in order: /graphql first (no REST path overlaps it), so a
        # GraphQL request is not matched against every REST pattern before its own.
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            *rest_routes(version("pasar")),
            *openai_routes(),
            Route("/mcp", mcp, methods=["GET", "POST", "DELETE"]),
            Route("/mcp/agents/{agent_id}", mcp, methods=["GET", "POST", "DELETE"]),
            Route(
                "/metrics",
                metrics_endpoint(execution_counts, public=settings.metrics_port is None),
                methods=["GET"],
            ),
            *pages.routes(),
        ],
        middleware=[
            *traced(spans),
            Middleware(RequestIds),
            *cors(settings),
            Middleware(SecurityHeaders, hsts_max_age_s=settings.hsts_max_age_s),
            Middleware(MetricsMiddleware, metrics=metrics, tracing=spans),
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
        ],
        exception_handlers={
            PasarError: by_surface(errors.pasar_error),
            HTTPException: by_surface(errors.http_error),
            Exception: by_surface(errors.unexpected_error),
        },
        lifespan=lifespan,
    )
