"""Sandboxed plugins (admins): POST|GET /plugins/sandboxed, DELETE /plugins/sandboxed/{name}."""

from __future__ import annotations

import dataclasses

from pasar_core.sandboxed_plugins import service
from pasar_core.sandboxed_plugins.service import SandboxedInstall
from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.models import SandboxedPluginListOut, SandboxedPluginOut
from pasar.rest.requests import caller, read_model, services_of
from pasar.rest.responses import json_response


async def install_plugin(request: Request) -> Response:
    principal = await caller(request)
    body = await read_model(request, SandboxedInstall)
    view = await service.install(services_of(request), principal, body)
    return json_response(SandboxedPluginOut.model_validate(dataclasses.asdict(view)), 201)


async def list_plugins(request: Request) -> Response:
    views = await service.listed(services_of(request), await caller(request))
    plugins = [SandboxedPluginOut.model_validate(dataclasses.asdict(view)) for view in views]
    return json_response(SandboxedPluginListOut(plugins=plugins))


async def remove_plugin(request: Request) -> Response:
    principal = await caller(request)
    await service.remove(services_of(request), principal, request.path_params["name"])
    return Response(status_code=204)
