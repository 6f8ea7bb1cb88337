"""Executors: where runs happen. `inline` runs asyncio tasks in this process; `rq` hands the
run to Redis and `pasar worker` processes. Both record into the same tables."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select, update

from pasar_core.executions.events import TERMINAL_STATUSES, publish
from pasar_core.services import Services
from pasar_core.storage.models import Execution, ExecutionEvent

log = logging.getLogger("pasar.executors")

RQ_QUEUE = "pasar-executions"


class Executor(Protocol):
    name: str

    async def submit(self, execution_id: uuid.UUID) -> None: ...

    def cancel_local(self, execution_id: uuid.UUID) -> bool: ...

    async def close(self) -> None: ...


class InlineExecutor:
    """asyncio tasks in the serving process, at most `max_concurrency` running at once."""

    name = "inline"

    def __init__(self, services: Services, max_concurrency: int) -> None:
        self._services = services
        self._slots = asyncio.Semaphore(max_concurrency)
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._heartbeat: asyncio.Task[None] | None = None

    async def submit(self, execution_id: uuid.UUID) -> None:
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat())
        task = asyncio.create_task(self._run(execution_id), name=f"execution-{execution_id}")
        self._tasks[execution_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(execution_id, None))

    async def _run(self, execution_id: uuid.UUID) -> None:
        from pasar_core.executions.runner import run_execution  # LangChain: loaded on first use

        async with self._slots:
            try:
                await run_execution(self._services, execution_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("inline execution %s crashed", execution_id)

    async def _beat(self) -> None:
        """One UPDATE for all live runs, so the reaper can tell they are alive."""
        while True:
            await asyncio.sleep(self._services.settings.heartbeat_s)
            ids = list(self._tasks)
            if not ids:
                continue
            with contextlib.suppress(Exception):
                async with self._services.sessionmaker.begin() as session:
                    await session.execute(
                        update(Execution)
                        .where(Execution.id.in_(ids))
                        .values(heartbeat_at=datetime.now(UTC))
                    )

    def cancel_local(self, execution_id: uuid.UUID) -> bool:
        task = self._tasks.get(execution_id)
        if task is None:
            return False
        task.cancel()
        return True

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        tasks = list(self._tasks.values())
        if not tasks:
            return
        from pasar_core.executions.runner import SHUTDOWN  # loaded already by the runs

        for task in tasks:
            task.cancel(SHUTDOWN)
        await asyncio.gather(*tasks, return_exceptions=True)


async def end_execution(
    services: Services,
    execution_id: uuid.UUID,
    status: str,
    reason: str,
    *,
    from_statuses: frozenset[str] = frozenset({"queued", "running"}),
) -> bool:
    """End an execution that is in one of `from_statuses` and announce it; else do nothing."""
    async with services.sessionmaker.begin() as session:
        execution = await session.get(Execution, execution_id, with_for_update=True)
        if execution is None or execution.status not in from_statuses:
            return False
        execution.status = status
        execution.error = reason
        if status in TERMINAL_STATUSES:
            execution.finished_at = datetime.now(UTC)
        next_seq = await session.scalar(
            select(func.coalesce(func.max(ExecutionEvent.seq), 0)).where(
                ExecutionEvent.execution_id == execution_id
            )
        )
        await publish(
            session, execution_id, int(next_seq or 0) + 1, "status",
            {"status": status, "error": reason},
        )  # fmt: skip
        return True


async def reap_stale(services: Services) -> int:
    """Fail runs whose process stopped beating (a killed worker or server): never stuck."""
    cutoff = datetime.now(UTC) - timedelta(seconds=services.settings.stale_after_s)
    async with services.sessionmaker() as session:
        stale = await session.scalars(
            select(Execution.id).where(
                Execution.heartbeat_at < cutoff,
                (Execution.status == "running")
                | ((Execution.status == "queued") & (Execution.executor == "inline")),
            )
        )
        ids = list(stale)
    reason = "the process running this execution stopped"
    return sum(
        [await end_execution(services, execution_id, "failed", reason) for execution_id in ids]
    )


class RQExecutor:
    """Enqueues runs on Redis for `pasar worker` processes (JSON serializer, retries for
    infrastructure failures: a lost worker, never a failed run)."""

    name = "rq"

    def __init__(self, redis_url: str) -> None:
        from redis import Redis
        from rq import Queue
        from rq.serializers import JSONSerializer

        self._redis = Redis.from_url(redis_url)
        self.queue = Queue(RQ_QUEUE, connection=self._redis, serializer=JSONSerializer)

    async def submit(self, execution_id: uuid.UUID) -> None:
        from rq import Callback, Retry

        await asyncio.to_thread(
            self.queue.enqueue,  # the job path is the server's worker module, found by import
            "pasar.worker.run_execution_job",
            str(execution_id),
            job_id=str(execution_id),
            retry=Retry(max=2, interval=[1, 5]),
            on_failure=Callback("pasar.worker.on_job_failure"),
            job_timeout=3600,
            result_ttl=600,
            failure_ttl=86_400,
        )

    def cancel_local(self, execution_id: uuid.UUID) -> bool:
        return False  # a worker hears the cancel notification itself

    async def close(self) -> None:
        await asyncio.to_thread(self._redis.close)


async def beat_while(
    services: Services, execution_id: uuid.UUID, task: asyncio.Task[object]
) -> None:
    """Keep one execution's heartbeat fresh until `task` ends (used by RQ jobs)."""
    while not task.done():
        with contextlib.suppress(Exception):
            async with services.sessionmaker.begin() as session:
                await session.execute(
                    update(Execution)
                    .where(Execution.id == execution_id)
                    .values(heartbeat_at=datetime.now(UTC))
                )
        await asyncio.wait({task}, timeout=services.settings.heartbeat_s)
