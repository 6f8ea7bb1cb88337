"""OpenTelemetry tracing: off unless an OTLP endpoint is configured, and then imported.

`Tracing()` (off) creates no spans and imports nothing of OpenTelemetry, so a server without
tracing pays no start-up time for it. `build_tracing(settings)` with `PASAR_OTLP_ENDPOINT` or
the standard `OTEL_EXPORTER_OTLP_ENDPOINT` builds a tracer provider of this process (never the
global one) exporting over OTLP/HTTP: requests (the ASGI instrumentation), SQL through the ORM's
engine (the SQLAlchemy instrumentation), and pasar's own spans for GraphQL operations, runs,
model calls, tool calls and sandbox calls. The OpenTelemetry packages are the `tracing` extra.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from pasar_core.errors import StartupError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span
    from sqlalchemy.ext.asyncio import AsyncEngine
    from starlette.types import ASGIApp, Receive, Scope, Send

    from pasar_core.settings import Settings

log = logging.getLogger("pasar.tracing")

Attributes = Mapping[str, str | int | float | bool]


class Tracing:
    """The spans of one process: a no-op unless built with a tracer provider."""

    def __init__(self, provider: TracerProvider | None = None, *, owned: bool = False) -> None:
        """`owned`: the provider is this object's to shut down (`build_tracing`'s)."""
        self.provider = provider
        self.owned = owned
        self._tracer = provider.get_tracer("pasar") if provider is not None else None

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def span(self, name: str, attributes: Attributes | None = None) -> AbstractContextManager[Any]:
        """A span around the block (the current span's child); nothing when tracing is off."""
        if self._tracer is None:
            return contextlib.nullcontext()
        return self._tracer.start_as_current_span(name, attributes=attributes)

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """Spans for the statements of `engine` (this engine only; nothing is patched)."""
        if self.provider is None:
            return
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpMeterProvider

        connections = NoOpMeterProvider().get_meter("pasar").create_up_down_counter("unused")
        tracer = self.provider.get_tracer("pasar.sql")
        EngineTracer(tracer, engine.sync_engine, connections)  # type: ignore[no-untyped-call]

    def wrap_asgi(self, app: ASGIApp) -> ASGIApp:
        """A server span per HTTP request (named by its route template once it is matched).
        The span sees the query string with its values redacted (`QueryRedacted`)."""
        if self.provider is None:
            return app
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        return QueryRedacted(app, lambda inner: OpenTelemetryMiddleware(
            inner,
            tracer_provider=self.provider,
            exclude_spans=["receive", "send"],
            # Named by the method until the route is known (pasar.metrics renames it): a raw
            # path would make a span name of anything a caller sends.
            default_span_details=lambda scope: (str(scope.get("method") or "HTTP"), {}),
        ))  # fmt: skip

    def flush(self) -> None:
        """Export the spans still buffered (when an app or worker stops); an owned provider
        is shut down with it (its export thread ends)."""
        if self.provider is None:
            return
        if self.owned:
            self.provider.shutdown()
        else:
            self.provider.force_flush()


REDACTED = "REDACTED"
ORIGINAL_SCOPE = "pasar.unredacted_scope"


def redacted_query(query: bytes) -> bytes:
    """The query string with every value replaced (`code=REDACTED&state=REDACTED`): OAuth
    callback codes, states and any token a URL carries stay out of the spans; names stay."""
    names = (part.split(b"=", 1)[0] for part in query.split(b"&") if part)
    return b"&".join(name + b"=" + REDACTED.encode() for name in names)


class QueryRedacted:
    """Gives the tracing middleware (`wrap`) a copy of the scope whose query string is
    redacted, and the app inside it the original scope: the request is served unchanged,
    while every span attribute made from the URL (`http.target`, `http.url`) is redacted."""

    def __init__(self, app: ASGIApp, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
        self.app = app
        self.traced = wrap(self.unredacted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not scope.get("query_string"):
            await self.traced(scope, receive, send)
            return
        seen = {**scope, "query_string": redacted_query(scope["query_string"])}
        seen[ORIGINAL_SCOPE] = scope
        await self.traced(seen, receive, send)

    async def unredacted(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope.get(ORIGINAL_SCOPE, scope), receive, send)


def current_span() -> Span | None:
    """The recording span of this context, if OpenTelemetry is loaded at all."""
    import sys

    if "opentelemetry.trace" not in sys.modules:
        return None
    from opentelemetry import trace

    span = trace.get_current_span()
    return span if span.get_span_context().is_valid else None


def current_trace_id() -> str | None:
    span = current_span()
    return None if span is None else format(span.get_span_context().trace_id, "032x")


def traces_url(endpoint: str) -> str:
    """OTLP/HTTP's traces path under a base endpoint, as the OTEL_EXPORTER_OTLP_ENDPOINT rule."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def build_tracing(settings: Settings) -> Tracing:
    if not settings.otlp_endpoint:
        return Tracing()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise StartupError(
            "tracing is configured (PASAR_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT) but "
            "OpenTelemetry is not installed: install pasar[tracing]"
        ) from None
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    exporter = OTLPSpanExporter(endpoint=traces_url(settings.otlp_endpoint))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    log.info("tracing: spans exported over OTLP/HTTP to %s", traces_url(settings.otlp_endpoint))
    return Tracing(provider, owned=True)
