"""Which tools an owner's agents may use: the one place that answers it.

The installed plugins' registry, overlaid with the sandboxed plugins' proxies and the owner's
custom tools (`pasar_core.custom_tools.overlay`), so every caller that saves, plans or runs an
agent asks `registry_for` once and passes the answer on instead of reading `services.registry`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from pasar_core.registry import Registry
from pasar_core.services import Services


async def registry_for(
    services: Services,
    owner_id: uuid.UUID,
    tool_ids: Collection[str] | None = None,
    organisation_id: uuid.UUID | None = None,
) -> Registry:
    """The registry the owner's agents see; `tool_ids`, when given, are the ones about to be
    used (pinned custom tool versions among them are loaded); `organisation_id`, the agent's
    organisation: the custom tools shared with it that the owner may use join."""
    if services.tool_overlays is None:
        return services.registry
    return await services.tool_overlays.registry_for(owner_id, tool_ids, organisation_id)
