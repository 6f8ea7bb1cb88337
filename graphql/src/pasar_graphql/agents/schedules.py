"""An agent's schedules (the caller's): list, create, pause, resume, delete; the same services
as REST (pasar_core.schedules.service), the same policy operations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from pasar_core.schedules import service as schedules
from pasar_core.schedules.service import ScheduleInput, ScheduleView
from pasar_core.schemas import parse_model
from strawberry.scalars import JSON

from pasar_graphql.context import Info
from pasar_graphql.idempotency import once
from pasar_graphql.permissions import allowed


@strawberry.type(description="One of your schedules on an agent: runs of it as you, on a cron.")
class AgentSchedule:
    id: strawberry.ID
    agent_id: strawberry.ID
    cron: str
    timezone: str = strawberry.field(description="The IANA timezone the cron is read in.")
    input: JSON
    thread_id: str | None
    paused: bool
    paused_reason: str | None = strawberry.field(
        description="Why the server paused it (you lost access to the agent); null: you did."
    )
    next_run_at: datetime | None
    last_fired_at: datetime | None = strawberry.field(description="The tick of its latest run.")
    created_at: datetime

    @classmethod
    def of(cls, view: ScheduleView) -> AgentSchedule:
        return cls(
            id=strawberry.ID(str(view.id)), agent_id=strawberry.ID(str(view.agent_id)),
            cron=view.cron, timezone=view.timezone, input=JSON(view.input),
            thread_id=view.thread_id, paused=view.paused, paused_reason=view.paused_reason,
            next_run_at=view.next_run_at, last_fired_at=view.last_fired_at,
            created_at=view.created_at,
        )  # fmt: skip


def _view_as_json(view: ScheduleView) -> dict[str, Any]:
    return view.model_dump(mode="json")


def _view_from_json(stored: dict[str, Any]) -> ScheduleView:
    return ScheduleView.model_validate(stored)


async def resolve_schedules(info: Info, agent_id: strawberry.ID) -> list[AgentSchedule]:
    context = info.context
    found = await schedules.list_schedules(context.services, await context.principal(), agent_id)
    return [AgentSchedule.of(view) for view in found]


async def resolve_create_schedule(
    info: Info,
    agent_id: strawberry.ID,
    cron: str,
    input: JSON,
    timezone: str = "UTC",
    thread_id: str | None = None,
    idempotency_key: Annotated[
        str | None,
        strawberry.argument(
            description="The same key and arguments answer the first result again."
        ),
    ] = None,
) -> AgentSchedule:
    context = info.context
    principal = await context.principal()
    arguments = {"cron": cron, "timezone": timezone, "input": input, "thread_id": thread_id}
    data = parse_model(ScheduleInput, {k: v for k, v in arguments.items() if v is not None},
                       what="schedule")  # fmt: skip

    async def create() -> ScheduleView:
        return await schedules.create_schedule(context.services, principal, agent_id, data)

    async def load(stored: Any) -> ScheduleView:
        return _view_from_json(stored)

    view = await once(info, "createSchedule", idempotency_key,
                      {"agent_id": str(agent_id), **arguments}, create, _view_as_json, load)  # fmt: skip
    return AgentSchedule.of(view)


async def _set_paused(
    info: Info, agent_id: strawberry.ID, schedule_id: strawberry.ID, paused: bool
) -> AgentSchedule:
    context = info.context
    view = await schedules.set_paused(
        context.services, await context.principal(), agent_id, schedule_id, paused=paused
    )
    return AgentSchedule.of(view)


async def resolve_pause_schedule(
    info: Info, agent_id: strawberry.ID, schedule_id: strawberry.ID
) -> AgentSchedule:
    return await _set_paused(info, agent_id, schedule_id, True)


async def resolve_resume_schedule(
    info: Info, agent_id: strawberry.ID, schedule_id: strawberry.ID
) -> AgentSchedule:
    return await _set_paused(info, agent_id, schedule_id, False)


async def resolve_delete_schedule(
    info: Info, agent_id: strawberry.ID, schedule_id: strawberry.ID
) -> bool:
    context = info.context
    await schedules.delete_schedule(context.services, await context.principal(), agent_id,
                                    schedule_id)  # fmt: skip
    return True


@strawberry.type
class ScheduleQueries:
    schedules = strawberry.field(
        resolver=resolve_schedules,
        permission_classes=allowed("agents.schedules.list"),
        description="Your schedules on an agent, oldest first.",
    )


@strawberry.type
class ScheduleMutations:
    create_schedule = strawberry.mutation(
        resolver=resolve_create_schedule,
        permission_classes=allowed("agents.schedules.create"),
        description="Schedule runs of the agent as you: a cron expression (five fields, or six "
        "with seconds last) in an IANA timezone, and each run's input.",
    )
    pause_schedule = strawberry.mutation(
        resolver=resolve_pause_schedule,
        permission_classes=allowed("agents.schedules.pause"),
        description="Pause one of your schedules: no runs until resumed.",
    )
    resume_schedule = strawberry.mutation(
        resolver=resolve_resume_schedule,
        permission_classes=allowed("agents.schedules.resume"),
        description="Resume one of your schedules from its next tick.",
    )
    delete_schedule = strawberry.mutation(
        resolver=resolve_delete_schedule,
        permission_classes=allowed("agents.schedules.delete"),
        description="Delete one of your schedules (the runs it fired stay).",
    )
