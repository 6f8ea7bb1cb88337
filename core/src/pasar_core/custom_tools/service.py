"""The catalogue and custom tools as both API surfaces serve them (REST and GraphQL).

Anyone sees the installed and sandboxed plugins' tools; a signed-in caller also sees their own
custom tools (latest versions; `id@N` by asking for it). Registering, updating and deleting go
through `custom_tools.store`; a caller's first registration in a namespace claims it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pasar_core.accounts.principal import Principal
from pasar_core.catalog import list_tools, tool_view
from pasar_core.custom_tools import store
from pasar_core.custom_tools.definition import ToolDefinition
from pasar_core.custom_tools.ids import parse_ref
from pasar_core.errors import ToolNotFound
from pasar_core.registry import Registry
from pasar_core.services import Services
from pasar_core.tool_access import registry_for


async def visible_registry(services: Services, principal: Principal | None) -> Registry:
    if principal is not None:
        return await registry_for(services, principal.user_id)
    if services.tool_overlays is not None:
        return await services.tool_overlays.public_registry()
    return services.registry


async def catalogue(
    services: Services, principal: Principal | None, family: str | None = None
) -> list[dict[str, Any]]:
    return list_tools(await visible_registry(services, principal), family)


def custom_view(version: store.StoredVersion, versions: list[int] | None = None) -> dict[str, Any]:
    """A custom tool version with its whole definition (the owner's own view)."""
    definition = version.definition.model_dump(mode="json")
    namespace = version.tool_id.split(":", 1)[0]
    return {
        **definition,
        "id": version.tool_id,
        "family": namespace,
        "auth_provider": None,
        "scopes": [],
        "source": "custom",
        "kind": version.definition.kind,
        "version": version.version,
        "latest_version": version.latest_version,
        "versions": versions,
        "digest": version.digest,
        "created_at": _iso(version.created_at),
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat()


async def tool_detail(
    services: Services, principal: Principal | None, tool_id: str
) -> dict[str, Any]:
    """An installed or sandboxed tool's catalogue view, or one of the caller's custom tools
    with its definition; `TOOL_NOT_FOUND` otherwise (other users' tools included)."""
    public = await visible_registry(services, None)
    found = public.tools.get(tool_id)
    if found is not None:
        return tool_view(found)
    if principal is None or parse_ref(tool_id) is None:
        raise ToolNotFound(tool_id[:200])
    version, versions = await store.get_version(services, principal, tool_id)
    return custom_view(version, versions)


async def register_tool(
    services: Services, principal: Principal, definition: ToolDefinition
) -> dict[str, Any]:
    stored = await store.register(services, principal, definition)
    return {"tool_id": stored.tool_id, "version": stored.version, "tool": custom_view(stored, [1])}


async def update_tool(
    services: Services, principal: Principal, tool_id: str, definition: ToolDefinition
) -> dict[str, Any]:
    stored = await store.add_version(services, principal, tool_id, definition)
    versions = list(range(1, stored.version + 1))
    return {"tool_id": stored.tool_id, "version": stored.version,
            "tool": custom_view(stored, versions)}  # fmt: skip


async def delete_tool(services: Services, principal: Principal, tool_id: str) -> None:
    await store.delete_tool(services, principal, tool_id)
