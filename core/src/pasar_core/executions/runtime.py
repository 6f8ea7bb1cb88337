"""The execution runtime of one process (`Runs`): where its runs happen and how they end.

A server holds one (the lifespan yields it beside `Services` as `{"services", "runs"}`), with
the `inline` executor (asyncio tasks here) and, with `REDIS_URL`, the `rq` executor (jobs for
`pasar worker`), a reconciler and an event hub for streams. A worker holds one too, without
executors: its rq jobs call `Runs.run`. Either way `Runs` owns the process's journal (the
batched writer of every run here), its heartbeat, cancellation of its local runs, and drain:

`drain()` (SIGTERM) makes the process not ready, takes no new runs, ends event streams, lets
in-flight runs finish within `drain_s`, and hands the rest back to the queue (`running ->
queued`), where another process resumes them from their recorded steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from pasar_core.errors import BadRequest, ServiceUnavailable
from pasar_core.executions import store
from pasar_core.executions.events import EventHub
from pasar_core.executions.recovery import Reconciler
from pasar_core.executions.status import CANCEL_REQUESTED, HANDOFF
from pasar_core.executions.store import Journal
from pasar_core.executions.webhooks import deliver, webhook_allow_list, webhook_secret
from pasar_core.objects import build_object_store
from pasar_core.privacy.retention import RetentionJob
from pasar_core.services import Services
from pasar_core.storage.db import asyncpg_dsn

if TYPE_CHECKING:
    from pasar_core.executions.rq_queue import RQSubmitter
    from pasar_core.schedules.firer import ScheduleFirer

log = logging.getLogger("pasar.executions")

HANDBACK_WAIT_S = 8.0


class Executor(Protocol):
    name: str

    async def submit(self, execution_id: uuid.UUID) -> None: ...


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class InlineExecutor:
    """asyncio tasks in this process, at most `max_concurrency` running at once."""

    name = "inline"

    def __init__(self, runs: Runs, max_concurrency: int) -> None:
        self._runs = runs
        self._slots = asyncio.Semaphore(max_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, execution_id: uuid.UUID, lease: uuid.UUID | None = None) -> None:
        """Start the run here; `lease` is its reservation (made when it was queued)."""
        if self._runs.draining:
            raise ServiceUnavailable("this server is shutting down; send the run elsewhere")
        if lease is not None:
            self._runs.journal.hold(execution_id, lease)
        task = asyncio.create_task(self._run(execution_id, lease), name=f"run-{execution_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, execution_id: uuid.UUID, lease: uuid.UUID | None) -> None:
        try:
            async with self._slots:
                await self._runs.run(execution_id, lease)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("inline execution %s crashed", execution_id)
        finally:
            self._runs.journal.release(execution_id)

    @property
    def running(self) -> int:
        return len(self._tasks)


class Runs:
    """See the module docstring. `serve=True`: a server (executors, reconciler); otherwise a
    worker, whose jobs call `run()`."""

    def __init__(self, services: Services, *, serve: bool = True, owner: str | None = None) -> None:
        from pasar_core.executions.rq_queue import RQSubmitter

        settings = services.settings
        self.services = services
        self.owner = owner or process_name()
        # LISTEN needs a session of its own: never through PgBouncer's transaction mode.
        url = settings.database_direct_url or self.engine.url.render_as_string(hide_password=False)
        self.hub = EventHub(asyncpg_dsn(url), services.sessionmaker)
        self.journal = Journal(
            self.engine,
            flush_s=settings.events_flush_s,
            on_cancel_requested=self.cancel_local,
            db_wait_s=settings.run_db_wait_s,
        )
        self.inline = InlineExecutor(self, settings.inline_max_concurrency) if serve else None
        self.rq = (
            RQSubmitter(settings.redis_url, retries=settings.max_interruptions)
            if serve and settings.redis_url
            else None
        )
        self.webhook_allow = webhook_allow_list(settings.webhook_allow_hosts)
        self.draining = False
        self._schedule_queue: RQSubmitter | None = None
        self._local: dict[uuid.UUID, asyncio.Task[str | None]] = {}
        self._background: set[asyncio.Task[object]] = set()
        self._stopped = asyncio.Event()
        self._reconciler = (
            Reconciler(
                self.engine, settings, owner=self.owner, submit_inline=self._resume_inline,
                rq=self.rq, local=lambda: set(self._local),
            )
            if serve
            else None
        )  # fmt: skip
        self.retention = (
            RetentionJob(self.engine, services.object_store or build_object_store(settings))
            if serve
            else None
        )
        """Deletes organisations' runs, knowledge and files older than their retention policy,
        and sweeps lapsed idempotency keys and invitations (pasar_core.privacy)."""
        self.schedules = self._schedule_firer(serve)
        """Fires due schedules here: a server's into its inline executor when no Redis is
        configured, a worker's into the rq queue when one is (pasar_core.schedules.firer)."""
        self.hub.on_cancel(self.cancel_local)

    def _schedule_firer(self, serve: bool) -> ScheduleFirer | None:
        from pasar_core.executions.rq_queue import RQSubmitter
        from pasar_core.schedules.firer import ScheduleFirer

        settings = self.services.settings
        if serve and self.rq is None and self.inline is not None:
            return ScheduleFirer(self, self.inline)
        if not serve and settings.redis_url:
            self._schedule_queue = RQSubmitter(
                settings.redis_url, retries=settings.max_interruptions
            )
            return ScheduleFirer(self, self._schedule_queue)
        return None

    @property
    def engine(self) -> AsyncEngine:
        engine = self.services.sessionmaker.kw["bind"]
        assert isinstance(engine, AsyncEngine)
        return engine

    @property
    def default_executor(self) -> str:
        return "rq" if self.rq is not None else "inline"

    def executor(self, name: str | None) -> Executor:
        name = name or self.default_executor
        if name == "inline" and self.inline is not None:
            return self.inline
        if name == "rq" and self.rq is not None:
            return self.rq
        if name == "inline":
            raise BadRequest("this process runs no inline executor")
        raise BadRequest("the rq executor needs REDIS_URL to be configured on the server")

    @property
    def in_flight(self) -> int:
        return len(self._local)

    # running ------------------------------------------------------------------------------

    async def run(self, execution_id: uuid.UUID, lease: uuid.UUID | None = None) -> str | None:
        """Run one execution here (inline tasks and rq jobs call this). A second delivery of a
        run already running in this process is ignored. Cancelling the caller cancels the run
        (an rq stop request)."""
        if execution_id in self._local:
            return None
        if self.draining:  # leave it queued for another process, not reserved for this one
            if lease is not None:
                await store.release(self.engine, execution_id, lease)
            return None
        # LangChain: imported off the loop once the app serves (pasar.app.load_run_modules)
        from pasar_core.executions.runner import run_execution

        task = asyncio.create_task(run_execution(self, execution_id, lease))
        self._local[execution_id] = task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel(CANCEL_REQUESTED)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
            raise
        finally:
            if self._local.get(execution_id) is task:
                del self._local[execution_id]

    def cancel_local(self, execution_id: uuid.UUID) -> None:
        task = self._local.get(execution_id)
        if task is not None and not task.done():
            task.cancel(CANCEL_REQUESTED)

    async def _resume_inline(self, execution_id: uuid.UUID, lease: uuid.UUID) -> None:
        if self.inline is not None and not self.draining:
            await self.inline.submit(execution_id, lease)

    def deliver_webhooks(self, execution_id: uuid.UUID, user_id: uuid.UUID, url: str) -> None:
        secret = webhook_secret(self.services.tokens.secret, user_id)
        self.spawn(deliver(self.hub, self.webhook_allow, execution_id, url, secret))

    def spawn(self, coroutine: Awaitable[object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.journal.start()
        if self.inline is not None:
            await self.hub.start()
        else:
            await self.hub.start(events=False)  # a worker hears cancels, not every event
        settings = self.services.settings
        self.spawn(self._beat_forever(settings.heartbeat_s))
        if self._reconciler is not None:
            interval = max(0.5, settings.stale_after_s / 3)
            self.spawn(self._reconciler.run_forever(interval, self._stopped))
        if self.retention is not None:
            self.spawn(self.retention.run_forever(settings.retention_interval_s, self._stopped))
        if self.schedules is not None:
            self.spawn(self.schedules.run_forever(settings.schedule_poll_s, self._stopped))

    async def _beat_forever(self, interval_s: float) -> None:
        while not self._stopped.is_set():
            try:
                await self.journal.beat()
            except Exception as error:
                log.warning("heartbeat failed: %s", type(error).__name__)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval_s):
                    await self._stopped.wait()

    @property
    def ready(self) -> bool:
        return not self.draining

    def begin_drain(self) -> None:
        """Stop taking runs and end event streams now (SIGTERM); `drain()` finishes it."""
        if not self.draining:
            log.warning("draining: no new runs; %d in flight", len(self._local))
        self.draining = True
        self.hub.end_streams()

    async def drain(self, bound_s: float | None = None) -> None:
        """Let in-flight runs finish within `bound_s` (default `drain_s`), then hand the rest
        back to the queue, recorded, for another process to resume."""
        self.begin_drain()
        bound = self.services.settings.drain_s if bound_s is None else bound_s
        running = [task for task in self._local.values() if not task.done()]
        if running:
            await asyncio.wait(running, timeout=max(0.0, bound))
        left = [task for task in self._local.values() if not task.done()]
        for task in left:
            task.cancel(HANDOFF)
        if left:
            log.warning("draining: handing %d run(s) back to the queue", len(left))
            await asyncio.wait(left, timeout=HANDBACK_WAIT_S)

    async def close(self) -> None:
        await self.drain()
        self._stopped.set()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.journal.close()
        await self.hub.close()
        if self.rq is not None:
            await self.rq.close()
        if self._schedule_queue is not None:
            await self._schedule_queue.close()
