"""Catalogue queries; public, no authentication needed."""

from __future__ import annotations

import strawberry
from pasar_core.catalog import list_tools

from pasar_graphql.context import Info
from pasar_graphql.tools.types import Tool


def resolve_tools(info: Info, family: str | None = None) -> list[Tool]:
    return [Tool.from_view(view) for view in list_tools(info.context.services.registry, family)]


def resolve_tool(info: Info, id: str) -> Tool | None:
    found = info.context.services.registry.tools.get(id)
    return Tool.of(found) if found is not None else None


@strawberry.type
class ToolQueries:
    tools = strawberry.field(
        resolver=resolve_tools, description="Installed tools, by id; optionally one family only."
    )
    tool = strawberry.field(
        resolver=resolve_tool, description="One tool by id; null when no plugin provides it."
    )
