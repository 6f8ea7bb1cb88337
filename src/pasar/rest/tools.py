"""The catalogue and custom tools: GET|POST /tools, GET|PUT|DELETE /tools/{id}, and sharing
one with an organisation: PUT|DELETE /tools/{id}/sharing."""

from __future__ import annotations

from pasar_core.accounts.credentials import credential_from_headers
from pasar_core.accounts.principal import Principal
from pasar_core.agents.service import SharingInput
from pasar_core.custom_tools import service
from pasar_core.custom_tools.definition import ToolDefinition
from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.models import CustomToolSavedOut, ToolDetailOut, ToolListOut, ToolOut
from pasar.rest.requests import caller, read_model, services_of
from pasar.rest.responses import json_response


async def optional_caller(request: Request) -> Principal | None:
    """The caller when credentials are sent (bad ones are refused), else None."""
    if credential_from_headers(request.headers) is None:
        return None
    return await caller(request)


async def list_tools(request: Request) -> Response:
    family = request.query_params.get("family")
    views = await service.catalogue(services_of(request), await optional_caller(request), family)
    return json_response(ToolListOut(tools=[ToolOut.model_validate(view) for view in views]))


async def get_tool(request: Request) -> Response:
    view = await service.tool_detail(
        services_of(request), await optional_caller(request), request.path_params["tool_id"]
    )
    return json_response(ToolDetailOut.model_validate(view))


async def register_tool(request: Request) -> Response:
    principal = await caller(request)
    definition = await read_model(request, ToolDefinition)
    saved = await service.register_tool(services_of(request), principal, definition)
    return json_response(CustomToolSavedOut.model_validate(saved), 201)


async def update_tool(request: Request) -> Response:
    principal = await caller(request)
    definition = await read_model(request, ToolDefinition)
    saved = await service.update_tool(
        services_of(request), principal, request.path_params["tool_id"], definition
    )
    return json_response(CustomToolSavedOut.model_validate(saved))


async def delete_tool(request: Request) -> Response:
    principal = await caller(request)
    await service.delete_tool(services_of(request), principal, request.path_params["tool_id"])
    return Response(status_code=204)


async def share_tool(request: Request) -> Response:
    principal = await caller(request)
    body = await read_model(request, SharingInput)
    view = await service.share_tool(
        services_of(request), principal, request.path_params["tool_id"], body
    )
    return json_response(ToolDetailOut.model_validate(view))


async def unshare_tool(request: Request) -> Response:
    principal = await caller(request)
    await service.unshare_tool(services_of(request), principal, request.path_params["tool_id"])
    return Response(status_code=204)
