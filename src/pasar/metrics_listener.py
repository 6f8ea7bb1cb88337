"""`/metrics` on a port of its own (`PASAR_METRICS_PORT`): Prometheus scrapes the pods there,
while the public port (the one the gateway routes) answers 404 for `/metrics`.

prometheus-client's own HTTP server runs in a thread; a scrape of the API runs `collect` (the
database and queue gauges) on the app's event loop before the series are written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger("pasar.metrics")
COLLECT_TIMEOUT_S = 10.0


class Scraped(Collector):
    """Every series of `registry()` at scrape time, after `refresh()` ran on `loop`."""

    def __init__(
        self,
        registry: Callable[[], CollectorRegistry],
        refresh: Callable[[], Coroutine[Any, Any, None]] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.registry = registry
        self.refresh = refresh
        self.loop = loop

    def describe(self) -> Iterable[Metric]:
        return ()  # not read at registration: the series are only known at scrape time

    def collect(self) -> Iterable[Metric]:
        if self.refresh is not None and self.loop is not None:
            future = asyncio.run_coroutine_threadsafe(self.refresh(), self.loop)
            try:
                future.result(COLLECT_TIMEOUT_S)
            except Exception:  # counters still answer; the gauges keep their last values
                future.cancel()
                log.warning("metrics: the scrape-time gauges could not be read", exc_info=True)
        yield from self.registry().collect()


@contextlib.contextmanager
def metrics_listener(host: str, port: int, scraped: Scraped) -> Iterator[int]:
    """Serves `scraped` at http://host:port/metrics until the block ends; yields the port."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(scraped)
    server, thread = start_http_server(port, addr=host, registry=registry)
    log.info("metrics: /metrics on %s:%s", host, server.server_port)
    try:
        yield int(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
