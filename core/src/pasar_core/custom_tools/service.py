"""The catalogue and custom tools as both API surfaces serve them (REST and GraphQL).

Anyone sees the installed and sandboxed plugins' tools; a signed-in caller also sees their own
custom tools and those shared with their organisation that they may use (latest versions;
`id@N` by asking for it; a tool shared with `viewer` by its id alone). Registering, updating and deleting go
through `custom_tools.store`; a caller's first registration in a namespace claims it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pasar_core.accounts.principal import Principal
from pasar_core.agents.service import SharingInput
from pasar_core.catalog import list_tools, tool_view
from pasar_core.custom_tools import sharing as sharing_store
from pasar_core.custom_tools import store
from pasar_core.custom_tools.definition import SECRET_PLACEHOLDER, ToolDefinition
from pasar_core.custom_tools.ids import parse_ref
from pasar_core.errors import ToolNotFound
from pasar_core.registry import Registry
from pasar_core.services import Services
from pasar_core.tool_access import registry_for


async def visible_registry(services: Services, principal: Principal | None) -> Registry:
    if principal is not None:
        return await registry_for(services, principal.user_id, None, principal.organisation_id)
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
        "shared_role": version.shared_role,
        "shared_organisation_id": (
            str(version.shared_organisation_id) if version.shared_role is not None else None
        ),
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat()


async def tool_detail(
    services: Services, principal: Principal | None, tool_id: str
) -> dict[str, Any]:
    """An installed or sandboxed tool's catalogue view, or a custom tool of the caller's (or
    shared with their organisation) with its definition (header values redacted for anyone
    but its owner, `redacted`); `TOOL_NOT_FOUND` otherwise (other users' private tools
    included)."""
    public = await visible_registry(services, None)
    found = public.tools.get(tool_id)
    if found is not None:
        return tool_view(found)
    if principal is None or parse_ref(tool_id) is None:
        raise ToolNotFound(tool_id[:200])
    version, versions = await store.get_version(services, principal, tool_id)
    view = custom_view(version, versions)
    return view if version.owner_id == principal.user_id else redacted(view)


REDACTED = "[redacted]"


def redacted(view: dict[str, Any]) -> dict[str, Any]:
    """Another member's view of a shared tool: the literal text of its header values (which may
    hold a credential) replaced by `[redacted]`, its `{secrets.name}` placeholders kept (they
    name the secrets an agent must set). The rest of the definition is shown as it is."""
    implementation = view.get("implementation")
    if not isinstance(implementation, dict) or not implementation.get("headers"):
        return view
    headers = {name: _redacted_value(value) for name, value in implementation["headers"].items()}
    return {**view, "implementation": {**implementation, "headers": headers}}


def _redacted_value(value: str) -> str:
    kept: list[str] = []
    last = 0
    for placeholder in SECRET_PLACEHOLDER.finditer(value):
        if value[last : placeholder.start()].strip():
            kept.append(REDACTED)
        kept.append(placeholder.group(0))
        last = placeholder.end()
    if value[last:].strip():
        kept.append(REDACTED)
    return " ".join(kept)


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


async def share_tool(
    services: Services, principal: Principal, tool_id: str, sharing: SharingInput
) -> dict[str, Any]:
    """Share (or, `role: null`, unshare) the caller's tool; its detail as it now is."""
    await sharing_store.share_tool(services, principal, tool_id, sharing)
    version, versions = await store.get_version(services, principal, tool_id)
    return custom_view(version, versions)


async def unshare_tool(services: Services, principal: Principal, tool_id: str) -> None:
    await sharing_store.unshare_tool(services, principal, tool_id)
