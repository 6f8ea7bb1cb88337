"""Catalogue queries; public, no authentication needed."""

from __future__ import annotations

import strawberry
from pasar_core.catalog import list_tools

from pasar_graphql.context import Info
from pasar_graphql.tools.types import Tool


@strawberry.type
class ToolQueries:
    @strawberry.field(description="Installed tools, by id; optionally one family only.")
    def tools(self, info: Info, family: str | None = None) -> list[Tool]:
        return [Tool.from_view(view) for view in list_tools(info.context.services.registry, family)]

    @strawberry.field(description="One tool by id; null when no installed plugin provides it.")
    def tool(self, info: Info, id: str) -> Tool | None:
        found = info.context.services.registry.tools.get(id)
        return Tool.of(found) if found is not None else None
