"""Catalogue queries: public; a signed-in caller also sees their own custom tools."""

from __future__ import annotations

import strawberry
from pasar_core.accounts.principal import Principal
from pasar_core.custom_tools import service
from pasar_core.errors import ToolNotFound

from pasar_graphql.context import Info
from pasar_graphql.tools.types import Tool


async def _caller(info: Info) -> Principal | None:
    return await info.context.optional_principal()


async def resolve_tools(info: Info, family: str | None = None) -> list[Tool]:
    views = await service.catalogue(info.context.services, await _caller(info), family)
    return [Tool.from_view(view) for view in views]


async def resolve_tool(info: Info, id: str) -> Tool | None:
    try:
        view = await service.tool_detail(info.context.services, await _caller(info), id)
    except ToolNotFound:
        return None
    return Tool.from_view(view)


@strawberry.type
class ToolQueries:
    tools = strawberry.field(
        resolver=resolve_tools,
        description="The catalogue by id: installed and sandboxed plugins' tools and, signed "
        "in, your custom tools (latest versions); optionally one family only.",
    )
    tool = strawberry.field(
        resolver=resolve_tool,
        description="One tool by id (your custom tools also as id@version); null when none.",
    )
