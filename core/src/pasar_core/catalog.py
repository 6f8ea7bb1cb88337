"""The tool catalogue: JSON views of registered tools and their sync into the `tools` table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from pasar_core.errors import StartupError
from pasar_core.registry import RegisteredTool, Registry
from pasar_core.services import Services
from pasar_core.storage.models import Tool


def tool_view(tool: RegisteredTool) -> dict[str, Any]:
    spec = tool.spec
    return {
        "id": spec.id,
        "family": tool.family.id,
        "title": spec.title,
        "description": spec.description,
        "input_schema": dict(spec.input_schema),
        "output_schema": dict(spec.output_schema),
        "auth_provider": spec.auth_provider,
        "scopes": sorted(spec.scopes),
        "effect": spec.effect.value,
        "timeout_s": spec.timeout_s,
        "source": tool.source,
        "version": tool.version,
    }


def list_tools(registry: Registry, family: str | None = None) -> list[dict[str, Any]]:
    return [
        tool_view(tool)
        for tool_id, tool in sorted(registry.tools.items())
        if family is None or tool.family.id == family
    ]


async def sync_tools(services: Services) -> None:
    """Upsert every installed tool; mark tools of uninstalled plugins unavailable. Rows of
    sandboxed plugins and custom tools are left alone; an installed tool whose id is already
    one of theirs refuses start-up (ids are never silently shared)."""
    rows = [
        {
            "id": tool.spec.id,
            "family": tool.family.id,
            "plugin": tool.plugin,
            "title": tool.spec.title,
            "description": tool.spec.description,
            "input_schema": dict(tool.spec.input_schema),
            "output_schema": dict(tool.spec.output_schema),
            "auth_provider": tool.spec.auth_provider,
            "scopes": sorted(tool.spec.scopes),
            "effect": tool.spec.effect.value,
            "available": True,
        }
        for tool in services.registry.tools.values()
    ]
    async with services.sessionmaker.begin() as session:
        taken = list(
            await session.scalars(
                select(Tool.id).where(
                    Tool.id.in_(list(services.registry.tools)), Tool.source != "installed"
                )
            )
        )
        if taken:
            raise StartupError(
                "installed plugins register tool ids that sandboxed plugins or custom tools "
                f"already use: {', '.join(sorted(taken)[:20])}; disable those plugins "
                "(PASAR_PLUGINS) or remove the sandboxed plugin / custom tools first"
            )
        await session.execute(
            update(Tool)
            .where(Tool.source == "installed", Tool.id.not_in(list(services.registry.tools)))
            .values(available=False)
        )
        if rows:
            statement = insert(Tool).values(rows)
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[Tool.id],
                    set_={
                        column: statement.excluded[column] for column in rows[0] if column != "id"
                    }
                    | {"updated_at": func.now()},
                )
            )
