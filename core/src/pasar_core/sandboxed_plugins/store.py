"""Sandboxed plugins in the database: one row per plugin, and its tools in the catalogue.

Installing again (a new version) replaces the row and raises its `revision`; tools the new
version dropped leave the catalogue, unless agents still use them (`TOOL_IN_USE`). Every change
raises the `sandboxed` counter of `tool_revisions`, so every process rebuilds its overlays.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.custom_tools.store import SANDBOXED_SCOPE, bump_revision, installed_namespaces
from pasar_core.errors import NotFound, ToolIdTaken, ToolInUse
from pasar_core.registry import Registry
from pasar_core.sandboxed_plugins.manifest import ManifestFamily, namespaces
from pasar_core.storage.models import AgentTool, SandboxedPlugin, Tool, ToolNamespace


@dataclass(frozen=True, slots=True)
class PluginView:
    name: str
    distribution: str
    version: str
    image: str
    revision: int
    tools: list[str]
    allow_hosts: list[str]
    installed_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: SandboxedPlugin) -> PluginView:
        tools = [t["id"] for f in row.manifest.get("families", []) for t in f.get("tools", [])]
        return cls(
            name=row.name,
            distribution=row.distribution,
            version=row.version,
            image=row.image,
            revision=row.revision,
            tools=sorted(tools),
            allow_hosts=list(row.allow_hosts),
            installed_at=row.installed_at,
            updated_at=row.updated_at,
        )


async def _check_free(
    session: AsyncSession, registry: Registry, name: str, families: tuple[ManifestFamily, ...]
) -> None:
    used = namespaces(families)
    ids = [tool.id for family in families for tool in family.tools]
    clash = sorted(used & installed_namespaces(registry)) + sorted(set(ids) & set(registry.tools))
    if clash:
        raise ToolIdTaken(
            f"the plugin's ids clash with installed tool families: {', '.join(clash[:10])}",
            details={"clash": clash[:50]},
        )
    claimed = list(
        await session.scalars(
            select(ToolNamespace.namespace).where(ToolNamespace.namespace.in_(used))
        )
    )
    if claimed:
        raise ToolIdTaken(
            f"the plugin's namespaces are used by custom tools: {', '.join(sorted(claimed))}",
            details={"clash": sorted(claimed)},
        )
    others = list(
        await session.scalars(
            select(Tool.id).where(
                Tool.source == "sandboxed",
                Tool.plugin != name,
                func.split_part(Tool.id, ":", 1).in_(used),
            )
        )
    )
    if others:
        raise ToolIdTaken(
            f"the plugin's ids clash with another sandboxed plugin: {', '.join(sorted(others)[:10])}",
            details={"clash": sorted(others)[:50]},
        )


async def save_plugin(
    session: AsyncSession,
    registry: Registry,
    *,
    name: str,
    distribution: str,
    version: str,
    image: str,
    manifest: dict[str, Any],
    families: tuple[ManifestFamily, ...],
    allow_hosts: list[str],
    installed_by: uuid.UUID | None,
) -> PluginView:
    await _check_free(session, registry, name, families)
    ids = [tool.id for family in families for tool in family.tools]
    dropped = list(
        await session.scalars(
            select(Tool.id).where(
                Tool.source == "sandboxed", Tool.plugin == name, Tool.id.not_in(ids)
            )
        )
    )
    await _refuse_in_use(session, dropped)
    if dropped:
        await session.execute(delete(Tool).where(Tool.id.in_(dropped)))
    rows = [
        {"id": tool.id, "family": family.id, "plugin": name, "title": tool.title,
         "description": tool.description, "input_schema": tool.input_schema,
         "output_schema": tool.output_schema, "auth_provider": tool.auth_provider,
         "scopes": sorted(tool.scopes), "effect": tool.effect.value, "available": True,
         "source": "sandboxed", "owner_id": None}
        for family in families
        for tool in family.tools
    ]  # fmt: skip
    statement = insert(Tool).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Tool.id],
            set_={c: statement.excluded[c] for c in rows[0] if c != "id"}
            | {"updated_at": func.now()},
        )
    )
    plugin = insert(SandboxedPlugin).values(
        name=name, distribution=distribution, version=version, image=image, manifest=manifest,
        allow_hosts=allow_hosts, revision=1, installed_by=installed_by,
    )  # fmt: skip
    await session.execute(
        plugin.on_conflict_do_update(
            index_elements=[SandboxedPlugin.name],
            set_={
                "distribution": plugin.excluded.distribution,
                "version": plugin.excluded.version,
                "image": plugin.excluded.image,
                "manifest": plugin.excluded.manifest,
                "allow_hosts": plugin.excluded.allow_hosts,
                "installed_by": plugin.excluded.installed_by,
                "revision": SandboxedPlugin.revision + 1,
                "updated_at": func.now(),
            },
        )
    )
    await bump_revision(session, SANDBOXED_SCOPE)
    row = await session.get(SandboxedPlugin, name, populate_existing=True)
    assert row is not None
    return PluginView.of(row)


async def _refuse_in_use(session: AsyncSession, tool_ids: list[str]) -> None:
    if not tool_ids:
        return
    agents = {
        str(a)
        for a in await session.scalars(
            select(AgentTool.agent_id).where(AgentTool.tool_id.in_(tool_ids))
        )
    }
    if agents:
        raise ToolInUse(
            f"agents still use {', '.join(sorted(tool_ids)[:10])}; remove the tools from them first",
            details={"tools": sorted(tool_ids)[:50], "agents": sorted(agents)[:50]},
        )


async def remove_plugin(session: AsyncSession, name: str) -> None:
    row = await session.get(SandboxedPlugin, name)
    if row is None:
        raise NotFound(f"no sandboxed plugin named {name[:100]!r}")
    ids = list(
        await session.scalars(
            select(Tool.id).where(Tool.source == "sandboxed", Tool.plugin == name)
        )
    )
    await _refuse_in_use(session, ids)
    await session.execute(delete(Tool).where(Tool.id.in_(ids)))
    await session.delete(row)
    await bump_revision(session, SANDBOXED_SCOPE)


async def list_plugins(session: AsyncSession) -> list[PluginView]:
    rows = await session.scalars(select(SandboxedPlugin).order_by(SandboxedPlugin.name))
    return [PluginView.of(row) for row in rows]


async def plugin_rows(session: AsyncSession) -> list[SandboxedPlugin]:
    return list(await session.scalars(select(SandboxedPlugin).order_by(SandboxedPlugin.name)))
