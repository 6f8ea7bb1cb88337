"""Catalogue queries; public, no authentication needed."""

from __future__ import annotations

import strawberry

from pasar_graphql.context import Info
from pasar_graphql.tools.types import Tool


def resolve_tools(info: Info, family: str | None = None) -> list[Tool]:
    context = info.context
    return list(context.catalogue.tools(context.services.registry, family))


def resolve_tool(info: Info, id: str) -> Tool | None:
    context = info.context
    return context.catalogue.by_id(context.services.registry).get(id)


@strawberry.type
class ToolQueries:
    tools = strawberry.field(
        resolver=resolve_tools, description="Installed tools, by id; optionally one family only."
    )
    tool = strawberry.field(
        resolver=resolve_tool, description="One tool by id; null when no plugin provides it."
    )
