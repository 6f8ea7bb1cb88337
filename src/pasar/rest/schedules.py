"""An agent's schedules (the caller's): POST|GET /agents/{id}/schedules,
POST /agents/{id}/schedules/{schedule_id}/pause|resume, DELETE /agents/{id}/schedules/{schedule_id}."""

from __future__ import annotations

from pasar_core.schedules import service as schedules
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.requests import caller, read_model, services_of
from pasar.rest.responses import json_response


class ScheduleListOut(BaseModel):
    schedules: list[schedules.ScheduleView]


async def create_schedule(request: Request) -> Response:
    principal = await caller(request)
    body = await read_model(request, schedules.ScheduleInput)
    view = await schedules.create_schedule(
        services_of(request), principal, request.path_params["agent_id"], body
    )
    return json_response(view, 201)


async def list_schedules(request: Request) -> Response:
    principal = await caller(request)
    found = await schedules.list_schedules(
        services_of(request), principal, request.path_params["agent_id"]
    )
    return json_response(ScheduleListOut(schedules=found))


async def _set_paused(request: Request, paused: bool) -> Response:
    principal = await caller(request)
    params = request.path_params
    view = await schedules.set_paused(
        services_of(request), principal, params["agent_id"], params["schedule_id"], paused=paused
    )
    return json_response(view)


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
