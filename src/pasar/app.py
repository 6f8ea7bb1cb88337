"""create_app(): the Starlette application with REST, GraphQL and health endpoints."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib.metadata import version

import pluggy
from pasar_core.errors import PasarError
from pasar_core.settings import Settings
from pasar_graphql.app import build_graphql_app
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from pasar.body_limit import BodyLimit
from pasar.lifecycle import running_services
from pasar.metrics import Metrics, MetricsMiddleware
from pasar.rest import errors
from pasar.rest.routes import rest_routes


def create_app(
    settings: Settings | None = None, pm: pluggy.PluginManager | None = None
) -> Starlette:
    """The ASGI app. Resources (database, plugins) live in the lifespan, not at import."""
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        with contextlib.ExitStack() as stack:
            served = settings
            if settings.embedded_sandbox and not settings.sandbox_redis_url:
                from pasar.embedded_sandbox import embedded_sandbox

                sandbox = stack.enter_context(embedded_sandbox(settings.ensure_data_dir()))
                served = settings.with_overrides(sandbox_redis_url=sandbox.redis_url)
            async with running_services(served, pm, watch_revocations=True) as services:
                yield {"services": services}

    graphql = build_graphql_app(dev_mode=settings.dev_mode)
    metrics = Metrics()
    return Starlette(
        routes=[
            *rest_routes(version("pasar")),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/metrics", metrics.endpoint, methods=["GET"]),
        ],
        middleware=[
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
        ],
        exception_handlers={
            PasarError: errors.pasar_error,
            HTTPException: errors.http_error,
            Exception: errors.unexpected_error,
        },
        lifespan=lifespan,
    )
