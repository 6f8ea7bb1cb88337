"""An agent's schedules through the API: create, list, pause, resume, delete; shared by REST
and GraphQL and checked against the policy table on the agent.

A schedule is its owner's, like a thread: it runs as them, and another member's (or another
agent's) schedule id is NOT_FOUND, exactly like one that never existed."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.accounts.principal import Principal
from pasar_core.agents.service import owned_agent, parse_agent_id
from pasar_core.audit import record as audit
from pasar_core.audit.record import Action, Actor
from pasar_core.errors import BadRequest, Conflict, NotFound
from pasar_core.executions.requests import bounded_input
from pasar_core.schedules.cron import checked_cron
from pasar_core.services import Services
from pasar_core.settings import Settings
from pasar_core.storage.models import Agent, Schedule

log = logging.getLogger("pasar.schedules")


class ScheduleLimitReached(Conflict):
    code = "SCHEDULE_LIMIT_REACHED"


class ScheduleInput(BaseModel):
    """Body of create: when (cron in an IANA timezone), what (the run's input) and, for an
    agent with thread memory, on which thread."""

    model_config = ConfigDict(extra="forbid")

    cron: str = Field(min_length=1, max_length=200, examples=["0 9 * * 1-5"])
    timezone: str = Field(default="UTC", min_length=1, max_length=64, examples=["Europe/Paris"])
    input: str | dict[str, Any]
    thread_id: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("input")
    @classmethod
    def _bounded_input(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        return bounded_input(value)  # the same bounds as a run's input


class ScheduleView(BaseModel):
    """One schedule as its owner sees it: the same shape in REST and (in camel case) GraphQL."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    agent_id: uuid.UUID
    cron: str
    timezone: str
    input: Any
    thread_id: str | None
    paused: bool
    paused_reason: str | None
    """Why the server paused it (its owner lost access to the agent, or their key ended); null:
    paused by its owner."""
    next_run_at: datetime | None
    last_fired_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: Schedule) -> ScheduleView:
        return cls(
            id=row.id, agent_id=row.agent_id, cron=row.cron, timezone=row.timezone,
            input=row.input, thread_id=row.thread_id, paused=row.paused_at is not None,
            paused_reason=row.paused_reason, next_run_at=row.next_run_at,
            last_fired_at=row.last_fired_at, created_at=row.created_at,
        )  # fmt: skip


def _missing(schedule_id: object) -> NotFound:
    return NotFound(f"no schedule with id {str(schedule_id)[:100]!r}")


def _parse_schedule_id(raw: str | uuid.UUID) -> uuid.UUID:
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError, AttributeError):
        raise _missing(raw) from None


async def _agent(
    session: AsyncSession, principal: Principal, agent_id: str | uuid.UUID, operation: str
) -> Agent:
    return await owned_agent(session, principal, parse_agent_id(agent_id), operation=operation)


async def create_schedule(
    services: Services, principal: Principal, agent_id: str | uuid.UUID, data: ScheduleInput
) -> ScheduleView:
    """A new schedule, first firing at its next tick. Refused whole (nothing stored) for a
    bad expression or timezone, too frequent a one, or an agent at its cap of schedules."""
    settings = services.settings
    cron = checked_cron(data.cron, data.timezone, min_interval_s=settings.schedule_min_interval_s)
    async with services.sessionmaker.begin() as session:
        agent = await _agent(session, principal, agent_id, "agents.schedules.create")
        if data.thread_id and agent.config.get("memory") not in ("thread", "summary"):
            raise BadRequest(
                "thread_id needs an agent whose config.memory is 'thread' or 'summary'"
            )
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"schedules|{principal.user_id}"},
        )  # the caps are counted under the owner's lock: two creates never both squeeze past
        await _check_caps(session, settings, principal.user_id, agent.id)
        row = Schedule(
            agent_id=agent.id, owner_id=principal.user_id,
            organisation_id=agent.organisation_id, cron=cron.expression,
            timezone=cron.timezone, input=data.input, thread_id=data.thread_id,
            next_run_at=cron.next_after(datetime.now(UTC)), api_key_id=principal.api_key_id,
        )  # fmt: skip
        session.add(row)
        await session.flush()
        await session.refresh(row)
        await audit.record(session, Action.SCHEDULE_CREATED, Actor.of(principal),
                           target=("schedule", row.id),
                           details={"agent_id": str(agent.id), "cron": cron.expression,
                                    "timezone": cron.timezone})  # fmt: skip
        return ScheduleView.of(row)


async def _check_caps(
    session: AsyncSession, settings: Settings, owner_id: uuid.UUID, agent_id: uuid.UUID
) -> None:
    """Each member's schedules on an agent are capped apart (one member cannot fill a shared
    agent's cap for the others), and so is everything one user owns."""
    on_agent, owned = (
        await session.execute(
            select(
                func.count().filter(Schedule.agent_id == agent_id),
                func.count(),
            ).where(Schedule.owner_id == owner_id)
        )
    ).one()
    if on_agent >= settings.schedule_cap:
        raise ScheduleLimitReached(
            f"you have {on_agent} schedules on this agent; the limit is {settings.schedule_cap}",
            details={"limit": settings.schedule_cap, "per": "agent"},
        )
    if owned >= settings.schedule_owner_cap:
        raise ScheduleLimitReached(
            f"you have {owned} schedules; the limit is {settings.schedule_owner_cap}",
            details={"limit": settings.schedule_owner_cap, "per": "owner"},
        )


async def list_schedules(
    services: Services, principal: Principal, agent_id: str | uuid.UUID
) -> list[ScheduleView]:
    """The caller's schedules on the agent, oldest first."""
    async with services.sessionmaker() as session:
        agent = await _agent(session, principal, agent_id, "agents.schedules.list")
        rows = await session.scalars(
            select(Schedule)
            .where(Schedule.agent_id == agent.id, Schedule.owner_id == principal.user_id)
            .order_by(Schedule.created_at, Schedule.id)
        )
        return [ScheduleView.of(row) for row in rows]


async def _own_schedule(
    session: AsyncSession, principal: Principal, agent: Agent, schedule_id: str | uuid.UUID
) -> Schedule:
    parsed = _parse_schedule_id(schedule_id)
    row = await session.get(Schedule, parsed, with_for_update=True)
    if row is None or row.agent_id != agent.id or row.owner_id != principal.user_id:
        raise _missing(parsed)
    return row


async def set_paused(
    services: Services,
    principal: Principal,
    agent_id: str | uuid.UUID,
    schedule_id: str | uuid.UUID,
    *,
    paused: bool,
) -> ScheduleView:
    """Pause (no more runs until resumed) or resume (from the next tick after now: ticks
    missed while paused are not fired). Doing either twice is harmless."""
    operation = "agents.schedules.pause" if paused else "agents.schedules.resume"
    async with services.sessionmaker.begin() as session:
        agent = await _agent(session, principal, agent_id, operation)
        row = await _own_schedule(session, principal, agent, schedule_id)
        if paused and row.paused_at is None:
            row.paused_at, row.next_run_at, row.paused_reason = datetime.now(UTC), None, None
        elif not paused and row.paused_at is not None:
            cron = checked_cron(row.cron, row.timezone, min_interval_s=0)
            row.paused_at, row.paused_reason = None, None
            row.next_run_at = cron.next_after(datetime.now(UTC))
        else:
            return ScheduleView.of(row)
        action = Action.SCHEDULE_PAUSED if paused else Action.SCHEDULE_RESUMED
        await audit.record(session, action, Actor.of(principal), target=("schedule", row.id),
                           details={"agent_id": str(agent.id)})  # fmt: skip
        await session.flush()
        return ScheduleView.of(row)


async def delete_schedule(
    services: Services,
    principal: Principal,
    agent_id: str | uuid.UUID,
    schedule_id: str | uuid.UUID,
) -> None:
    """Delete it; the runs it fired stay (their `schedule_id` becomes null)."""
    async with services.sessionmaker.begin() as session:
        agent = await _agent(session, principal, agent_id, "agents.schedules.delete")
        row = await _own_schedule(session, principal, agent, schedule_id)
        await session.delete(row)
        await audit.record(session, Action.SCHEDULE_DELETED, Actor.of(principal),
                           target=("schedule", row.id),
                           details={"agent_id": str(agent.id)})  # fmt: skip
