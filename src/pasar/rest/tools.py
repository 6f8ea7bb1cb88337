"""GET /tools and GET /tools/{id}: the catalogue of installed tools."""

from __future__ import annotations

from pasar_core.catalog import list_tools as catalogue
from pasar_core.catalog import tool_view
from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.models import ToolListOut, ToolOut
from pasar.rest.requests import services_of
from pasar.rest.responses import json_response


async def list_tools(request: Request) -> Response:
    family = request.query_params.get("family")
    tools = catalogue(services_of(request).registry, family)
    return json_response(ToolListOut(tools=[ToolOut.model_validate(tool) for tool in tools]))


async def get_tool(request: Request) -> Response:
    tool = services_of(request).registry.tool(request.path_params["tool_id"])
    return json_response(ToolOut.model_validate(tool_view(tool)))
