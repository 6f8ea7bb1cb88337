"""Sandboxed plugins as the registry sees them: proxy tools whose `run` is a sandbox call.

Each proxy has the plugin's own spec (id, schemas, effect, provider and scopes, timeout), so
scope planning, consent, approval and validation treat it exactly like an installed tool; only
the transport differs. A call sends the tool's arguments and its context (the agent's settings
for the family, the family's secrets, and an OAuth token narrowed to the tool's scopes) to a
sandbox worker, which runs it in a container of this plugin serving only this user.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.custom_tools.schemas import validator_for
from pasar_core.errors import SandboxUnavailable
from pasar_core.net.guard import ALLOW_BOUND_EXTRA
from pasar_core.registry import RegisteredTool
from pasar_core.sandbox.allow_hosts import opened_hosts
from pasar_core.sandbox.queue import NO_QUEUE, QUEUE_SLACK_S, SandboxQueue
from pasar_core.sandboxed_plugins.manifest import parse_manifest
from pasar_core.sandboxed_plugins.oauth import NarrowedTokens, narrowed_credentials
from pasar_core.sandboxed_plugins.store import plugin_rows
from pasar_core.services import Services
from pasar_core.specs import ToolContext, ToolFamily, ToolRun, ToolSpec
from pasar_core.storage.models import SandboxedPlugin

PLUGIN_PREFIX = "sandboxed:"


def plugin_request_info(row: SandboxedPlugin) -> dict[str, Any]:
    return {"name": row.name, "revision": row.revision, "image": row.image,
            "allow_hosts": list(row.allow_hosts)}  # fmt: skip


def proxy_run(
    services: Services,
    queue: SandboxQueue | None,
    tokens: NarrowedTokens,
    plugin: dict[str, Any],
    tool_id: str,
    timeout_s: float,
) -> ToolRun:
    async def run(ctx: ToolContext, args: dict[str, Any]) -> Any:
        if queue is None:
            raise SandboxUnavailable(NO_QUEUE, details={"tool": tool_id})
        oauth = None
        if ctx.oauth is not None:
            narrowed = await narrowed_credentials(
                services, tokens, uuid.UUID(ctx.user_id), ctx.oauth
            )
            oauth = {"provider": narrowed.provider, "access_token": narrowed.access_token,
                     "scopes": sorted(narrowed.scopes), "api_base_url": narrowed.api_base_url}  # fmt: skip
        request = {
            "op": "plugin.invoke",
            "plugin": plugin,
            "tool": tool_id,
            "args": args,
            "scope": ctx.user_id,
            "timeout_s": timeout_s,
            "context": {
                "user_id": ctx.user_id,
                "agent_id": ctx.agent_id,
                "execution_id": ctx.execution_id,
                "settings": dict(ctx.settings),
                "secrets": dict(ctx.secrets),
                "oauth": oauth,
            },
        }
        if plugin.get("allow_hosts"):  # which of them the operator opens, as it is now
            bound = ctx.extras.get(ALLOW_BOUND_EXTRA)
            request["plugin"] = {**plugin,
                                 "opened_hosts": list(opened_hosts(plugin["allow_hosts"], bound))}  # fmt: skip
        reply = await queue.call(request, timeout_s=timeout_s)
        return reply.get("result")

    return run


async def load_sandboxed_tools(
    session: AsyncSession, services: Services, queue: SandboxQueue | None, tokens: NarrowedTokens
) -> tuple[list[RegisteredTool], list[ToolFamily]]:
    """Every installed sandboxed plugin's proxy tools and families."""
    tools: list[RegisteredTool] = []
    families: list[ToolFamily] = []
    for row in await plugin_rows(session):
        plugin = plugin_request_info(row)
        for family in parse_manifest(row.manifest, services.registry):
            specs = tuple(
                ToolSpec(
                    id=tool.id,
                    title=tool.title,
                    description=tool.description,
                    input_schema=tool.input_schema,
                    output_schema=tool.output_schema,
                    run=proxy_run(services, queue, tokens, plugin, tool.id, tool.timeout_s),
                    effect=tool.effect,
                    auth_provider=tool.auth_provider,
                    scopes=tool.scopes,
                    timeout_s=tool.timeout_s + QUEUE_SLACK_S + 5.0,
                )
                for tool in family.tools
            )
            built = ToolFamily(
                id=family.id, title=family.title, description=family.description, tools=specs,
                version=family.version, settings_schema=family.settings_schema,
                secrets=family.secrets,
            )  # fmt: skip
            families.append(built)
            for spec, tool in zip(specs, family.tools, strict=True):
                tools.append(
                    RegisteredTool(
                        spec=spec,
                        family=built,
                        plugin=PLUGIN_PREFIX + row.name,
                        input_validator=validator_for(tool.input_schema),
                        output_validator=validator_for(tool.output_schema),
                        fingerprint=f"{row.name}:{row.revision}:{row.image}",
                        source="sandboxed",
                    )
                )
    return tools, families
