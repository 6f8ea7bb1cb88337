"""An owner's `mcp` custom tools: one kept-alive session per process for each server, credential
and allow list, reached through the SSRF guard (`pasar_core.mcp.guarded`). Light to import: the
SDK is loaded when the first such tool is called."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pasar_core.net.guard import ALLOW_BOUND_EXTRA, AllowList
from pasar_core.net.resolver import Resolver, resolver_for
from pasar_core.specs import Effect, ToolContext, ToolRun

if TYPE_CHECKING:
    from pasar_core.custom_tools.definition import McpImplementation
    from pasar_core.mcp.connection import McpConnection

MAX_SESSIONS = 256


@dataclass(slots=True)
class GuardedMcp:
    """This process's sessions with user-aimed MCP servers; the oldest is closed past
    `MAX_SESSIONS`."""

    connections: dict[str, McpConnection] = field(default_factory=dict)

    async def connection(
        self, url: str, headers: Mapping[str, str], allow: AllowList, resolver: Resolver,
        timeout_s: float,
    ) -> McpConnection:  # fmt: skip
        from pasar_core.mcp.connection import McpConnection
        from pasar_core.mcp.guarded import guarded_transport

        key = hashlib.sha256(
            json.dumps([url, sorted(headers.items()), sorted(map(str, allow.entries))]).encode()
        ).hexdigest()  # never the credential itself
        found = self.connections.get(key)
        if found is None:
            opener = guarded_transport(url, headers, allow, resolver, timeout_s)
            found = McpConnection(url.split("://", 1)[-1].split("/", 1)[0], opener)
            self.connections[key] = found
            while len(self.connections) > MAX_SESSIONS:
                oldest = next(iter(self.connections))
                await self.connections.pop(oldest).close()
        return found

    async def close(self) -> None:
        while self.connections:
            _, connection = self.connections.popitem()
            await connection.close()


def mcp_tool_run(
    tool_id: str,
    implementation: McpImplementation,
    allow_hosts: list[str],
    timeout_s: float,
    effect: Effect,
    pool: GuardedMcp | None,
) -> ToolRun:
    """The `run` of an owner's `mcp` custom tool: the call goes to `implementation.tool` over
    the pool's session, with the agent's secrets in the headers it names."""

    async def run(ctx: ToolContext, args: dict[str, Any]) -> Any:
        from pasar_core.custom_tools.http_tools import render_headers
        from pasar_core.mcp.errors import McpServerUnavailable, McpToolFailed
        from pasar_core.mcp.tools import content_blocks, error_text

        if pool is None:
            raise McpServerUnavailable(tool_id, "this process serves no MCP tools")
        bound = AllowList.parse(list(ctx.extras.get(ALLOW_BOUND_EXTRA, ()) or ()))
        allow = AllowList.parse(allow_hosts).within(bound)
        headers = render_headers(implementation.headers, ctx.secrets)
        connection = await pool.connection(
            implementation.url, headers, allow, resolver_for(ctx), timeout_s
        )
        result = await connection.call_tool(
            implementation.tool, args, may_repeat=effect is Effect.READ
        )
        if result.is_error:
            raise McpToolFailed(connection.name, implementation.tool, error_text(result))
        if result.structured_content is not None:
            return result.structured_content
        return {"content": content_blocks(result)}

    return run
