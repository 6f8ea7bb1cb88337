"""`pasar serve`: one embedded PostgreSQL (unless DATABASE_URL), N worker processes sharing it.

The parent process starts the embedded PostgreSQL once, hands its URL to the workers through
`DATABASE_URL`, runs the HTTP server (granian by default, uvicorn on request; both ASGI, both
handle SIGINT and SIGTERM by stopping their workers), and stops PostgreSQL when the server has
returned. Each worker migrates on start (migrations serialise on an advisory lock, so the first
one migrates and the others find the database current) and builds its own app.

Before anything starts, the parent refuses a port something already listens on, makes the key
files, and checks that the workers' connections fit PostgreSQL's `max_connections`
(`pasar.connection_budget`). Each worker dies with the parent (`pasar.parent_death`), and the
embedded PostgreSQL a killed parent left running is stopped by the next `serve`.

The parent imports neither the app nor SQLAlchemy: workers start while it waits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from pasar_core.errors import StartupError
from pasar_core.observability import MULTIPROCESS_ENV
from pasar_core.settings import Settings

from pasar.connection_budget import check_connection_budget, embedded_max_connections
from pasar.parent_death import SERVE_PID

log = logging.getLogger("pasar")

APP_FACTORY = "pasar.asgi:app"
# How long granian waits for a worker to stop before killing it: without a bound, a signal
# that arrives while a worker starts leaves granian waiting for it forever (granian 2.8).
WORKERS_KILL_TIMEOUT_S = 10
Server = Literal["granian", "uvicorn"]
SERVERS: tuple[Server, ...] = ("granian", "uvicorn")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    workers: int
    server: Server
    log_level: str
    backlog: int


@contextlib.contextmanager
def shared_database(settings: Settings, workers: int = 1) -> Iterator[str | None]:
    """Yields the embedded PostgreSQL's URL while it runs (None with `DATABASE_URL`): started
    once here for every worker (with connections enough for `workers`), stopped after them."""
    if settings.database_url:
        yield None
        return
    from pasar_core.embedded_pg import EmbeddedPostgres

    settings.ensure_data_dir()
    server = EmbeddedPostgres(
        settings.postgres_dir, max_connections=embedded_max_connections(settings, workers)
    )
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


def worker_environment(settings: Settings, database_url: str | None) -> dict[str, str]:
    """What workers need to build the same settings as this process (the CLI's flags too)."""
    env = {"PASAR_HOST": settings.host, "PASAR_PORT": str(settings.port)}
    env["PASAR_DATA_DIR"] = str(settings.data_dir)
    env[SERVE_PID] = str(os.getpid())
    if settings.dev_mode:
        env["PASAR_DEV"] = "1"
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def metrics_environment(settings: Settings, workers: int) -> dict[str, str]:
    """prometheus-client's multiprocess mode when several workers serve: each writes its
    series to files in one directory (emptied here, at every start) and `/metrics`, whichever
    worker answers, sums them. An operator's `PROMETHEUS_MULTIPROC_DIR` is used as it is."""
    if workers < 2 or os.environ.get(MULTIPROCESS_ENV):
        return {}
    directory = settings.data_dir / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True)
    return {MULTIPROCESS_ENV: str(directory)}


def run_server(settings: Settings, options: ServeOptions) -> None:
    """Serve until SIGINT or SIGTERM; returns once every worker has stopped."""
    if options.server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops
        from granian.log import LogLevels

        Granian(
            APP_FACTORY,
            factory=True,
            address=settings.host,
            port=settings.port,
            interface=Interfaces.ASGI,
            workers=options.workers,
            workers_kill_timeout=WORKERS_KILL_TIMEOUT_S,
            loop=Loops.uvloop,
            backlog=options.backlog,
            log_level=LogLevels(options.log_level),
            log_access=False,
        ).serve()
        return
    import uvicorn

    from pasar.access_log import redact_access_log

    redact_access_log()
    # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1; pasar
    # reads it itself, only from PASAR_TRUSTED_PROXIES (pasar_core.accounts.sources).
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=options.workers,
        log_level=options.log_level,
        backlog=options.backlog,
        proxy_headers=False,
        ws_max_size=settings.max_body_bytes,  # websocket frames, bounded as they are read
    )


def ensure_port_is_free(host: str, port: int) -> None:
    """Refuses to start on a port something already listens on. granian binds with
    SO_REUSEPORT, so it would start beside another server (stale workers of a killed `serve`
    among them) and share its connections; this probe binds without it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
        try:
            probe.bind((host, port))
        except OSError as error:
            raise StartupError(
                f"{host}:{port} is already in use ({error.strerror}); stop what listens there "
                "or choose another port (--port, PASAR_PORT)"
            ) from None


def serve(settings: Settings, options: ServeOptions) -> None:
    ensure_port_is_free(settings.host, settings.port)
    if settings.metrics_port is not None:
        if options.workers > 1:
            raise StartupError(
                "PASAR_METRICS_PORT serves one process's metrics: run `pasar serve --workers 1` "
                "(one process per pod or container), or unset it and block /metrics at the gateway"
            )
        ensure_port_is_free(settings.host, settings.metrics_port)
    # The key files are made here, once, before any worker reads them.
    settings.resolved_secret_key()
    settings.keyring()
    with shared_database(settings, options.workers) as database_url:
        url = database_url or settings.database_url
        assert url is not None  # one or the other
        check_connection_budget(settings, options.workers, url)
        os.environ.update(worker_environment(settings, database_url))
        os.environ.update(metrics_environment(settings, options.workers))
        run_server(settings, options)
