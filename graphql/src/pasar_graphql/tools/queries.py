"""Catalogue queries: public; a signed-in caller also sees their own custom tools."""

from __future__ import annotations

import strawberry
from pasar_core.custom_tools import service
from pasar_core.errors import ToolNotFound

from pasar_graphql.context import Info
from pasar_graphql.permissions import allowed
from pasar_graphql.tools.types import Tool


async def resolve_tools(info: Info, family: str | None = None) -> list[Tool]:
    context = info.context
    registry = await service.visible_registry(context.services, await context.optional_principal())
    return list(context.catalogue.tools(registry, family))


async def resolve_tool(info: Info, id: str) -> Tool | None:
    context = info.context
    try:
        view = await service.tool_detail(context.services, await context.optional_principal(), id)
    except ToolNotFound:
        return None
    return Tool.from_view(view)


@strawberry.type
class ToolQueries:
    tools = strawberry.field(
        resolver=resolve_tools,
        permission_classes=allowed("tools.catalogue"),
        description="The catalogue by id: installed and sandboxed plugins' tools and, signed "
        "in, your custom tools (latest versions); optionally one family only.",
    )
    tool = strawberry.field(
        resolver=resolve_tool,
        permission_classes=allowed("tools.read"),
        description="One tool by id (your custom tools also as id@version); null when none.",
    )
