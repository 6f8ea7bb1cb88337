"""Start-up and shut-down of the server's resources, shared by the app and the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import nullcontext
from types import FrameType
from typing import Any

import pluggy
from pasar_core.accounts.access_tokens import TokenSigner
from pasar_core.accounts.revocations import watching_revocations
from pasar_core.accounts.throttle import LoginThrottle
from pasar_core.catalog import sync_tools
from pasar_core.embedded_pg import EmbeddedPostgres
from pasar_core.executions.cache import build_result_cache
from pasar_core.executions.runtime import Runs
from pasar_core.objects import build_object_store
from pasar_core.observability.metrics import Metrics
from pasar_core.observability.pools import watch_engine
from pasar_core.observability.tracing import Tracing
from pasar_core.plugin_lifecycle import started_plugins
from pasar_core.plugins import build_plugin_manager
from pasar_core.rate_limits import InProcessCounter, RateLimiter, RedisCounter
from pasar_core.registry import build_registry
from pasar_core.services import Services
from pasar_core.settings import Settings
from pasar_core.storage.db import build_engine, build_sessionmaker
from pasar_core.storage.migrate import upgrade_async
from pasar_core.storage.reads import Reads
from starlette.concurrency import run_in_threadpool

log = logging.getLogger("pasar")


async def with_custom_tools(stack: contextlib.AsyncExitStack, services: Services) -> Services:
    """`services` with the sandbox queue (when a Redis is configured for it) and the owners'
    registries (custom tools and sandboxed plugins over the installed ones)."""
    from pasar_core.custom_tools.overlay import ToolOverlays
    from pasar_core.mcp.pool import GuardedMcp
    from pasar_core.sandbox.queue import SandboxQueue
    from pasar_core.sandboxed_plugins.oauth import NarrowedTokens
    from pasar_core.sandboxed_plugins.registry import load_sandboxed_tools

    settings = services.settings
    queue = (
        SandboxQueue(settings.sandbox_redis_url, services.tracing)
        if settings.sandbox_redis_url
        else None
    )
    if queue is not None:
        stack.push_async_callback(queue.close)

    tokens = NarrowedTokens()

    async def shared(session: Any) -> Any:
        return await load_sandboxed_tools(session, services, queue, tokens)

    mcp = GuardedMcp()  # sessions open only when an owner's MCP tool is called
    stack.push_async_callback(mcp.close)
    overlays = ToolOverlays(
        services.registry,
        services.sessionmaker,
        settings.sandbox,
        queue,
        shared_loader=shared,
        mcp=mcp,
    )
    return dataclasses.replace(services, sandbox_queue=queue, tool_overlays=overlays)


def build_rate_limiter(settings: Settings) -> RateLimiter:
    """Shared by every process through Redis when `REDIS_URL` is set, else this process's."""
    counter = RedisCounter(settings.redis_url) if settings.redis_url else InProcessCounter()
    factor = max(1, settings.rate_limit_source_factor)
    return RateLimiter(settings.rate_policy(), counter, source_factor=factor)


@contextlib.asynccontextmanager
async def database_url(settings: Settings) -> AsyncIterator[str]:
    """`DATABASE_URL`, or the embedded PostgreSQL started for as long as the context lasts."""
    if settings.database_url:
        yield settings.database_url
        return
    data_dir = settings.ensure_data_dir()
    server = EmbeddedPostgres(data_dir / "postgres")
    url = await run_in_threadpool(server.start)
    log.info("embedded PostgreSQL running in %s", server.pgdata)
    try:
        yield url
    finally:
        await run_in_threadpool(server.stop)


def direct_url(settings: Settings, url: str) -> str:
    """Where LISTEN connections and migrations go: `DATABASE_DIRECT_URL`, else `url` (they
    need a session of their own, which PgBouncer's transaction mode does not keep)."""
    return settings.database_direct_url or url


@contextlib.asynccontextmanager
async def running_services(
    settings: Settings,
    pm: pluggy.PluginManager | None = None,
    *,
    prepare_database: bool = True,
    watch_revocations: bool = False,
    runs_agents: bool = False,
    metrics: Metrics | None = None,
    tracing: Tracing | None = None,
) -> AsyncIterator[Services]:
    """Plugins, registry, migrated database, token signer and the revoked-session listener
    (with `watch_revocations`: the server, which authenticates requests), torn down in reverse
    order. Workers skip `prepare_database` (migrations and the tool catalogue sync are the
    server's job). With `runs_agents` (processes that serve or run agents: the server, workers)
    the operator's MCP servers are connected and their tools added, and the plugins' `startup`
    hooks run last and their `shutdown` hooks first; administrative commands do neither. The
    execution runtime is `running_runs`."""
    plugins = pm or build_plugin_manager(enabled=settings.enabled_plugins)
    registry = build_registry(plugins, max_result_bytes=settings.max_tool_result_bytes)
    settings.ensure_data_dir()
    async with database_url(settings) as url, contextlib.AsyncExitStack() as stack:
        if prepare_database:
            await upgrade_async(direct_url(settings, url))
        mcp = None
        if runs_agents and settings.mcp_servers:
            from pasar_core.mcp.clients import mcp_tools

            registry, mcp = await stack.enter_async_context(
                mcp_tools(registry, settings.mcp_servers)
            )
        engine = build_engine(
            url,
            pool_size=settings.db_pool_size,
            pool_timeout_s=settings.db_pool_timeout_s,
            statement_cache_size=settings.db_statement_cache_size,
        )
        metrics = metrics or Metrics()
        tracing = tracing or Tracing()
        watch_engine(engine, metrics)
        tracing.instrument_engine(engine)
        sessionmaker = build_sessionmaker(engine)
        result_cache = build_result_cache(settings.redis_url, sessionmaker)
        rate_limiter = build_rate_limiter(settings)
        stack.push_async_callback(rate_limiter.close)
        reads = await Reads.open(
            url,
            max_size=settings.db_read_pool_size,
            timeout_s=settings.db_pool_timeout_s,
            read_url=settings.database_read_url,
            read_your_writes_s=settings.db_read_your_writes_s,
            statement_cache_size=settings.db_statement_cache_size,
            tracing=tracing,
        )
        try:
            services = Services(
                settings=settings,
                plugins=plugins,
                registry=registry,
                sessionmaker=sessionmaker,
                tokens=TokenSigner(settings.resolved_secret_key(), settings.access_token_ttl_s),
                keyring=settings.keyring(),
                object_store=build_object_store(settings),
                result_cache=result_cache,
                login_throttle=LoginThrottle(policy=settings.throttle_policy()),
                rate_limiter=rate_limiter,
                reads=reads,
                mcp=mcp,
                metrics=metrics,
                tracing=tracing,
            )
            if prepare_database:
                await sync_tools(services)
            services = await with_custom_tools(stack, services)
            async with (
                watching_revocations(
                    direct_url(settings, url),
                    services.revoked_sessions,
                    enabled=watch_revocations,
                ),
                started_plugins(plugins, services) if runs_agents else nullcontext(),
            ):
                yield services
        finally:
            await result_cache.close()
            await reads.close()
            await engine.dispose()


@contextlib.asynccontextmanager
async def running_runs(services: Services, *, serve: bool = True) -> AsyncIterator[Runs]:
    """The execution runtime of this process: a server's (`serve`: executors, reconciler) or a
    worker's; on exit it drains (in-flight runs finish within `drain_s` or are handed back)."""
    runs = Runs(services, serve=serve)
    await runs.start()
    try:
        yield runs
    finally:
        await runs.close()


@contextlib.contextmanager
def draining_on_signals(runs: Runs) -> Iterator[None]:
    """On SIGTERM or SIGINT, start draining at once (not ready, no new runs, event streams
    ended), then let the server's own handler shut it down: it waits for open connections,
    which the ended streams no longer hold, then the lifespan hands back unfinished runs.
    Main thread only (signals cannot be handled elsewhere); elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handle(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(runs.begin_drain)
        server_handler = previous.get(signal.Signals(signum))
        if callable(server_handler):
            server_handler(signum, frame)

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
