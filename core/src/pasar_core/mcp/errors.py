"""What an MCP tool call can fail with, as the model and an API caller read it."""

from __future__ import annotations

from pasar_core.errors import ToolError


class McpServerUnavailable(ToolError):
    """The MCP server could not be reached, or its connection broke during the call."""

    code = "MCP_SERVER_UNAVAILABLE"
    status = 502

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(
            f"MCP server {server!r} is unavailable: {reason}",
            details={"server": server, "reason": reason},
        )
        self.server = server


class McpToolFailed(ToolError):
    """The MCP server answered the call with an error (the tool's own, or a protocol one)."""

    code = "MCP_TOOL_ERROR"

    def __init__(self, server: str, tool: str, message: str) -> None:
        shown = message if len(message) <= 2000 else message[:2000] + "..."
        super().__init__(
            f"MCP tool {tool!r} of server {server!r} failed: {shown}",
            details={"server": server, "tool": tool},
        )
