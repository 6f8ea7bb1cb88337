"""The catalogue's GraphQL objects, built once per registry instead of once per request."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pasar_core.catalog import list_tools
from pasar_core.registry import Registry

from pasar_graphql.tools.types import Tool

MAX_REGISTRIES = 128
"""Registries whose objects are kept: the installed one and recent owners' overlays."""


@dataclass(frozen=True, slots=True)
class _Built:
    registry: Registry  # held, so its id() is not reused while the entry lives
    tools: tuple[Tool, ...]
    by_id: Mapping[str, Tool]
    by_family: Mapping[str, tuple[Tool, ...]]


class ToolCatalogue:
    """`Tool` objects per registry (the installed one, and owners' registries with their custom
    tools), least recently used dropped first. Resolvers only read them, so requests share
    them."""

    def __init__(self, max_registries: int = MAX_REGISTRIES) -> None:
        self._max = max_registries
        self._built: OrderedDict[int, _Built] = OrderedDict()

    def _built_for(self, registry: Registry) -> _Built:
        key = id(registry)
        found = self._built.get(key)
        if found is not None and found.registry is registry:
            self._built.move_to_end(key)
            return found
        tools = tuple(Tool.from_view(view) for view in list_tools(registry))
        by_family: dict[str, list[Tool]] = {}
        for tool in tools:
            by_family.setdefault(tool.family, []).append(tool)
        built = _Built(
            registry,
            tools,
            MappingProxyType({tool.id: tool for tool in tools}),
            MappingProxyType({family: tuple(found) for family, found in by_family.items()}),
        )
        self._built[key] = built
        if len(self._built) > self._max:
            self._built.popitem(last=False)
        return built

    def tools(self, registry: Registry, family: str | None = None) -> tuple[Tool, ...]:
        """Every tool by id, or one family's."""
        built = self._built_for(registry)
        return built.tools if family is None else built.by_family.get(family, ())

    def by_id(self, registry: Registry) -> Mapping[str, Tool]:
        return self._built_for(registry).by_id
