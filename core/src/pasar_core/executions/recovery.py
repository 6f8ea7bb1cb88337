"""Runs whose process died, and the queue reconciled with the executions table.

A run's holder beats every `heartbeat_s`; one silent for `stale_after_s` is taken back
(`running -> queued`, an interruption) and resumed from its recorded steps, by whichever
process finds it first: a runner handed the run again, or a server's reconciler, which also

- resumes `inline` runs nobody holds (handed back by a draining server, or left by a server
  that died) in its own process: the embedded default's server resumes its own runs;
- makes sure every `rq` run the table says is queued has a job in Redis (Redis that lost its
  data, a job rq gave up on), and lets rq fail over jobs of dead workers (its abandoned-job
  cleanup);
- fails runs interrupted more than `max_interruptions` times, saying so;
- ends runs whose approval expired (`approval_ttl_s`; `failed`, APPROVAL_EXPIRED).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from pasar_core.executions import store
from pasar_core.executions.approval_decisions import expire_due
from pasar_core.executions.status import ExecutionStatus
from pasar_core.settings import Settings

if TYPE_CHECKING:
    from pasar_core.executions.rq_queue import RQSubmitter

log = logging.getLogger("pasar.executions.recovery")

S = ExecutionStatus
BATCH = 200


def _cutoff(settings: Settings) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=settings.stale_after_s)


async def requeue_lost(engine: AsyncEngine, execution_id: uuid.UUID, settings: Settings) -> bool:
    """`running -> queued` for a run whose holder stopped beating (or `-> failed` once it was
    interrupted too often). True when it was queued again."""
    cutoff = _cutoff(settings)
    limit = settings.max_interruptions

    def stale(row: Any) -> bool:
        return row.heartbeat_at is None or row.heartbeat_at < cutoff

    columns = {"interruptions": store.EXECUTIONS.c.interruptions + 1, "lease": None}
    queued = await store.transition(
        engine, execution_id, S.QUEUED, only_from={S.RUNNING},
        event={"status": S.QUEUED.value, "interrupted": True,
               "reason": "the process running it stopped"},
        values=columns | {"owner": None},
        when=lambda row: stale(row) and row.interruptions < limit,
    )  # fmt: skip
    if queued is not None:
        log.warning("execution %s: its process stopped; queued to resume", execution_id)
        return True
    reason = (
        f"the run was interrupted {limit + 1} times (its process stopped each time); "
        "it was not resumed again"
    )
    failed = await store.transition(
        engine, execution_id, S.FAILED, only_from={S.RUNNING},
        event=store.end_event(S.FAILED, error=reason), values=columns | {"error": reason},
        when=lambda row: stale(row) and row.interruptions >= limit,
    )  # fmt: skip
    if failed is not None:
        log.warning("execution %s: %s", execution_id, reason)
    return False


Submit = Callable[[uuid.UUID, uuid.UUID], Awaitable[None]]


class Reconciler:
    """What a server process does every `stale_after_s / 3` seconds (see the module doc)."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        *,
        owner: str,
        submit_inline: Submit | None,
        rq: RQSubmitter | None,
        local: Callable[[], set[uuid.UUID]],
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._owner = owner
        self._submit_inline = submit_inline
        self._rq = rq
        self._local = local
        self.resumed = 0

    async def tick(self) -> int:
        """One pass; returns how many runs it queued again, handed to an executor or ended."""
        handled = await expire_due(self._engine)
        cutoff = _cutoff(self._settings)
        executors = ["inline"] if self._submit_inline is not None else []
        executors += ["rq"] if self._rq is not None else []
        if not executors:
            return handled
        table = store.EXECUTIONS
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(table.c.id, table.c.status, table.c.executor, table.c.lease)
                    .where(
                        table.c.status.in_([S.QUEUED.value, S.RUNNING.value]),
                        table.c.executor.in_(executors),
                        or_(
                            table.c.heartbeat_at < cutoff,
                            (table.c.status == S.QUEUED.value)
                            & table.c.lease.is_(None)
                            & (table.c.executor == "inline"),
                        ),
                    )
                    .order_by(table.c.heartbeat_at)
                    .limit(BATCH)
                )
            ).all()
        local = self._local()
        rq_queued: list[uuid.UUID] = []
        for row in rows:
            if row.id in local:
                continue
            if row.status == S.RUNNING.value:
                if not await requeue_lost(self._engine, row.id, self._settings):
                    continue
                handled += 1
            if row.executor == "inline" and self._submit_inline is not None:
                lease = uuid.uuid4()
                if await store.reserve(
                    self._engine, row.id, lease, self._owner, stale_before=cutoff
                ):
                    await self._submit_inline(row.id, lease)
                    self.resumed += 1
                    handled += 1
            elif row.executor == "rq":
                rq_queued.append(row.id)
        if self._rq is not None:
            handled += await self._rq.ensure_delivered(rq_queued)
            await self._rq.recover_abandoned()
        return handled

    async def run_forever(self, interval_s: float, stopped: asyncio.Event) -> None:
        while not stopped.is_set():
            try:
                handled = await self.tick()
                if handled:
                    log.info("reconciled %d execution(s)", handled)
            except Exception as error:
                log.warning("reconciling executions failed: %s", type(error).__name__)
            try:
                async with asyncio.timeout(interval_s):
                    await stopped.wait()
            except TimeoutError:
                pass
