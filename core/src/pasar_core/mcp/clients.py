"""The operator's MCP servers for one process: a kept-alive connection each, and their tools
listed once at start-up as tool families of the registry."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from pasar_core.errors import StartupError
from pasar_core.mcp.config import McpServerConfig
from pasar_core.mcp.connection import McpConnection
from pasar_core.mcp.errors import McpServerUnavailable, McpToolFailed
from pasar_core.mcp.tools import family_tools
from pasar_core.mcp.transports import transport_for
from pasar_core.registry import Registry

log = logging.getLogger("pasar.mcp")


@dataclass(frozen=True, slots=True)
class McpClients:
    """One connection per configured server (by server name)."""

    connections: dict[str, McpConnection]


@contextlib.asynccontextmanager
async def mcp_tools(
    registry: Registry, servers: Sequence[McpServerConfig]
) -> AsyncIterator[tuple[Registry, McpClients]]:
    """`registry` with a family per server in `servers` (their tools listed now); the sessions
    stay open until the context ends. A server that cannot be reached at start-up refuses
    the start (its tools would be missing from every agent that uses them)."""
    connections: dict[str, McpConnection] = {}
    try:
        for config in servers:
            connection = McpConnection(config.name, transport_for(config))
            connections[config.name] = connection
            try:
                listed = await connection.list_tools()
            except (McpServerUnavailable, McpToolFailed) as error:
                raise StartupError(f"PASAR_MCP_SERVERS: {error.message}") from None
            family, tools = family_tools(config, connection, listed)
            registry = registry.with_tools(tools, [family])
            log.info("MCP server %s: %d tools (%s)", config.name, len(tools), config.transport)
        yield registry, McpClients(connections)
    finally:
        for connection in connections.values():
            await connection.close()
