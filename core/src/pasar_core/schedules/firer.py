"""Fires due schedules: each tick of each schedule becomes one ordinary execution, whatever the
number of processes firing (workers with `REDIS_URL`, else servers).

Exactly once, by the database: a firer claims a due schedule with `SELECT ... FOR UPDATE SKIP
LOCKED` (another firer passes over a row one holds), and in the same transaction moves its
`next_run_at` past now and inserts the run, marked with (schedule, tick). Once it commits, the
row is no longer due; should two firers ever reach the same tick anyway, the unique index
`uq_executions_schedule_tick` refuses the second run. A crash before the commit leaves the
tick due (the next pass fires it); one after it leaves a queued run, which the server's
reconciler hands to an executor like any other.

Missed ticks (nothing was firing, or the schedule was due long ago): the latest tick at or
before now fires once; older ones are skipped, and counted in the log line.

A run is made as the schedule's owner with their access at fire time: their current role in
the agent's organisation (for a schedule made with an API key, the weaker of that and the key's
role), checked against `agents.execute` on the agent. An owner who is no longer a member, or may
no longer run the agent, or whose key was revoked or expired, gets no run: the schedule is
paused with the reason (`paused_reason`), and resuming it checks their access again. A fired
run pays the owner's runs rate budget like an execute request; a tick over it is skipped (not
paused) and logged. A deleted agent, user or key takes its schedules with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import CroniterError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.accounts.principal import Principal
from pasar_core.agents.service import owned_agent
from pasar_core.audit.record import Actor
from pasar_core.authz.roles import weaker
from pasar_core.errors import PasarError
from pasar_core.executions.requests import ExecuteRequest, RunParameters
from pasar_core.executions.runtime import Executor, Runs
from pasar_core.executions.service import Fired, Queued, queue_execution, submit_run
from pasar_core.rate_limits import RateLimited, RouteClass
from pasar_core.schedules.cron import Cron, ticks_between
from pasar_core.storage.models import ApiKey, Membership, Schedule, User

log = logging.getLogger("pasar.schedules")

NOT_A_MEMBER = "the schedule's owner is no longer a member of the agent's organisation"
KEY_REVOKED = "the API key the schedule was made with was revoked"
KEY_EXPIRED = "the API key the schedule was made with has expired"
SOURCE = "schedule"
"""The address a fired run's rate budget is charged to, besides its owner's and key's."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Outcome:
    schedule_id: uuid.UUID
    tick: datetime
    queued: Queued | None
    """The run made (None: the schedule was paused instead, or the tick had its run)."""


async def owner_principal(session: AsyncSession, schedule: Schedule) -> Principal | str:
    """The owner as they are now in the schedule's organisation, or why they cannot act: not
    a member, or (for a schedule made with an API key) the key was revoked or has expired. A
    key's schedule acts with the weaker of the key's role and the owner's."""
    found = (
        await session.execute(
            select(User.email, User.operator, Membership.role)
            .join(Membership, Membership.user_id == User.id)
            .where(
                User.id == schedule.owner_id, Membership.organisation_id == schedule.organisation_id
            )
        )
    ).first()
    if found is None:
        return NOT_A_MEMBER
    email, operator, role = found
    if schedule.api_key_id is None:
        return Principal(user_id=schedule.owner_id, email=email, role=role, via="token",
                         organisation_id=schedule.organisation_id, operator=operator)  # fmt: skip
    key = await session.get(ApiKey, schedule.api_key_id)
    if key is None or key.revoked_at is not None:
        return KEY_REVOKED
    if key.expires_at is not None and key.expires_at <= utc_now():
        return KEY_EXPIRED
    return Principal(user_id=schedule.owner_id, email=email, role=weaker(key.role, role),
                     via="api_key", organisation_id=schedule.organisation_id,
                     operator=operator and key.operator, api_key_id=key.id)  # fmt: skip


class ScheduleFirer:
    """Fires the due schedules of one process into `executor` (see the module docstring).
    `now` is the clock (tests hand in their own)."""

    def __init__(
        self,
        runs: Runs,
        executor: Executor,
        *,
        now: Callable[[], datetime] = utc_now,
        batch: int = 100,
    ) -> None:
        self._runs = runs
        self._executor = executor
        self._now = now
        self._batch = batch

    def with_clock(self, now: Callable[[], datetime]) -> ScheduleFirer:
        """Another firer of the same process and executor, reading time from `now`."""
        return ScheduleFirer(self._runs, self._executor, now=now, batch=self._batch)

    async def fire_due(self) -> list[Outcome]:
        """One pass: every schedule due now (at most `batch`), each in its own transaction;
        the runs made are handed to the executor once their transaction committed."""
        outcomes: list[Outcome] = []
        now = self._now()
        for _ in range(self._batch):
            if self._runs.draining:
                break
            outcome = await self._fire_one(now)
            if outcome is None:
                break
            outcomes.append(outcome)
            if outcome.queued is not None and not outcome.queued.cached:
                with contextlib.suppress(PasarError):  # submit_run failed the run and logged
                    await submit_run(
                        self._runs, self._executor, outcome.queued.id, outcome.queued.lease
                    )
        return outcomes

    async def _fire_one(self, now: datetime) -> Outcome | None:
        async with self._runs.services.sessionmaker.begin() as session:
            schedule = (
                await session.scalars(
                    select(Schedule)
                    .where(Schedule.paused_at.is_(None), Schedule.next_run_at <= now)
                    .order_by(Schedule.next_run_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if schedule is None or schedule.next_run_at is None:
                return None
            cron = Cron(schedule.cron, schedule.timezone)
            try:
                tick, upcoming = cron.latest_due(now)
            except (PasarError, CroniterError, ValueError, OverflowError):
                # its timezone left the tz database, or it has no tick left: never a poison row
                _pause(schedule, "its cron expression or timezone no longer gives a next tick")
                return Outcome(schedule.id, now, None)
            skipped = (
                ticks_between(cron, schedule.next_run_at, tick)
                if tick > schedule.next_run_at
                else 0
            )
            schedule.next_run_at, schedule.last_fired_at = upcoming, tick
            queued = await self._queue(session, schedule, tick)
            await session.flush()
        if queued is not None:
            log.info("schedule %s fired for %s (%d older missed ticks skipped): execution %s",
                     schedule.id, tick.isoformat(), skipped, queued.id)  # fmt: skip
        return Outcome(schedule.id, tick, queued)

    async def _queue(
        self, session: AsyncSession, schedule: Schedule, tick: datetime
    ) -> Queued | None:
        principal = await owner_principal(session, schedule)
        try:
            if isinstance(principal, str):
                raise _Refused(principal)
            agent = await owned_agent(
                session, principal, schedule.agent_id, operation="agents.execute"
            )
            await self._runs.services.rate_limiter.check(
                RouteClass.RUNS, principal, f"{SOURCE}:{schedule.owner_id}"
            )
            parameters = RunParameters(
                wait=False, thread_id=schedule.thread_id, executor=self._executor.name
            )
            request = ExecuteRequest(input=schedule.input, parameters=parameters)
            actor = Actor(principal.user_id, "schedule", organisation_id=principal.organisation_id)
            async with session.begin_nested():
                return await queue_execution(
                    session, self._runs, principal, agent, request, self._executor,
                    fired=Fired(schedule.id, tick), actor=actor,
                )  # fmt: skip
        except IntegrityError:  # the tick has its run already (the unique index said so)
            log.warning("schedule %s: the tick %s was fired already", schedule.id, tick)
            return None
        except RateLimited:  # the owner's runs budget is spent: this tick only is skipped
            log.warning("schedule %s: the tick %s was skipped: its owner is over the runs rate "
                        "limit", schedule.id, tick)  # fmt: skip
            return None
        except (PasarError, _Refused, ValueError) as refused:
            _pause(schedule, refused.message if isinstance(refused, PasarError) else str(refused))
            return None

    async def run_forever(self, interval_s: float, stopped: asyncio.Event) -> None:
        while not stopped.is_set():
            try:
                await self.fire_due()
            except Exception as error:
                log.warning("firing schedules failed: %s", type(error).__name__)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval_s):
                    await stopped.wait()


class _Refused(Exception):
    pass


def _pause(schedule: Schedule, reason: str) -> None:
    """Stop firing it, saying why (its owner sees `paused_reason`; resuming checks again)."""
    schedule.paused_at, schedule.next_run_at = datetime.now(UTC), None
    schedule.paused_reason = reason[:500]
    log.warning("schedule %s paused: %s", schedule.id, reason[:200])
