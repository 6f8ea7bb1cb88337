"""The catalogue's GraphQL objects, built once per registry instead of once per request."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from pasar_core.catalog import list_tools
from pasar_core.registry import Registry

from pasar_graphql.tools.types import Tool


class ToolCatalogue:
    """`Tool` objects for the registry it was last asked about (the app's, for its lifetime).
    Resolvers only read them, so requests share them."""

    def __init__(self) -> None:
        self._registry: Registry | None = None
        self._tools: tuple[Tool, ...] = ()
        self._by_id: Mapping[str, Tool] = MappingProxyType({})
        self._by_family: dict[str, tuple[Tool, ...]] = {}

    def _built_for(self, registry: Registry) -> None:
        if registry is not self._registry:
            tools = tuple(Tool.from_view(view) for view in list_tools(registry))
            by_family: dict[str, list[Tool]] = {}
            for tool in tools:
                by_family.setdefault(tool.family, []).append(tool)
            self._tools = tools
            self._by_id = MappingProxyType({tool.id: tool for tool in tools})
            self._by_family = {family: tuple(found) for family, found in by_family.items()}
            self._registry = registry

    def tools(self, registry: Registry, family: str | None = None) -> tuple[Tool, ...]:
        """Every tool by id, or one family's."""
        self._built_for(registry)
        return self._tools if family is None else self._by_family.get(family, ())

    def by_id(self, registry: Registry) -> Mapping[str, Tool]:
        self._built_for(registry)
        return self._by_id
