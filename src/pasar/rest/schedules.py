"""An agent's schedules (the caller's): POST|GET /agents/{id}/schedules,
POST /agents/{id}/schedules/{schedule_id}/pause|resume, DELETE /agents/{id}/schedules/{schedule_id}."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pasar_core.schedules import service as schedules
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.requests import caller, read_model, services_of
from pasar.rest.responses import json_response


class ScheduleOut(BaseModel):
    id: uuid.UUID
    agent_id: uuid.UUID
    cron: str
    timezone: str
    input: Any
    thread_id: str | None
    paused: bool
    paused_reason: str | None
    """Why the server paused it (its owner lost access to the agent); null: paused by you."""
    next_run_at: datetime | None
    last_fired_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, view: schedules.ScheduleView) -> ScheduleOut:
        return cls(**{name: getattr(view, name) for name in cls.model_fields})


class ScheduleListOut(BaseModel):
    schedules: list[ScheduleOut]


async def create_schedule(request: Request) -> Response:
    principal = await caller(request)
    body = await read_model(request, schedules.ScheduleInput)
    view = await schedules.create_schedule(
        services_of(request), principal, request.path_params["agent_id"], body
    )
    return json_response(ScheduleOut.of(view), 201)


async def list_schedules(request: Request) -> Response:
    principal = await caller(request)
    found = await schedules.list_schedules(
        services_of(request), principal, request.path_params["agent_id"]
    )
    return json_response(ScheduleListOut(schedules=[ScheduleOut.of(view) for view in found]))


async def _set_paused(request: Request, paused: bool) -> Response:
    principal = await caller(request)
    params = request.path_params
    view = await schedules.set_paused(
        services_of(request), principal, params["agent_id"], params["schedule_id"], paused=paused
    )
    return json_response(ScheduleOut.of(view))


async def pause_schedule(request: Request) -> Response:
    return await _set_paused(request, True)


async def resume_schedule(request: Request) -> Response:
    return await _set_paused(request, False)


async def delete_schedule(request: Request) -> Response:
    principal = await caller(request)
    params = request.path_params
    await schedules.delete_schedule(
        services_of(request), principal, params["agent_id"], params["schedule_id"]
    )
    return Response(status_code=204)
