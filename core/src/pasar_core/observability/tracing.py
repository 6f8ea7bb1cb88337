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
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from pasar_core.errors import StartupError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span
    from sqlalchemy.ext.asyncio import AsyncEngine
    from starlette.types import ASGIApp

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
        """A server span per HTTP request (named by its route template once it is matched)."""
        if self.provider is None:
            return app
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        return OpenTelemetryMiddleware(
            app,
            tracer_provider=self.provider,
            exclude_spans=["receive", "send"],
            # Named by the method until the route is known (pasar.metrics renames it): a raw
            # path would make a span name of anything a caller sends.
            default_span_details=lambda scope: (str(scope.get("method") or "HTTP"), {}),
        )

    def flush(self) -> None:
        """Export the spans still buffered (when an app or worker stops); an owned provider
        is shut down with it (its export thread ends)."""
        if self.provider is None:
            return
        if self.owned:
            self.provider.shutdown()
        else:
            self.provider.force_flush()


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
