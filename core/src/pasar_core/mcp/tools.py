"""An MCP server's listed tools as a pasar tool family: ids, schemas, effects, and a `run` that
calls the tool through the server's kept-alive session."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

import mcp_types as types
from jsonschema import Draft202012Validator

from pasar_core.contract import check_tool
from pasar_core.mcp.config import McpServerConfig
from pasar_core.mcp.connection import McpConnection
from pasar_core.mcp.errors import McpToolFailed
from pasar_core.registry import RegisteredTool
from pasar_core.specs import Effect, ToolContext, ToolFamily, ToolRun, ToolSpec

log = logging.getLogger("pasar.mcp")

PLUGIN = "mcp"
MAX_NAME = 60
MAX_DESCRIPTION = 4000

# What a call returns when the tool declares no output schema: the server's content blocks.
CONTENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["content"],
    "properties": {
        "content": {"type": "array", "items": {"type": "object"}},
        "structured": {},
    },
}


def action_name(mcp_name: str) -> str:
    """The action part of a pasar id for an MCP tool name (`Get-Forecast` -> `get_forecast`)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", mcp_name)
    action = re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")[:MAX_NAME]
    if not action or not action[0].isalpha():
        action = f"t_{action}"
    return action


def effect_of(tool: types.Tool) -> Effect:
    """`read` only when the server marks the tool read-only; otherwise `write`."""
    hints = tool.annotations
    return Effect.READ if hints is not None and hints.read_only_hint is True else Effect.WRITE


def content_blocks(result: types.CallToolResult) -> list[dict[str, Any]]:
    return [
        block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in result.content
    ]


def error_text(result: types.CallToolResult) -> str:
    parts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    return "\n".join(parts) or "the tool reported an error"


def _runner(connection: McpConnection, tool: types.Tool, effect: Effect) -> ToolRun:
    structured = tool.output_schema is not None

    async def run(ctx: ToolContext, args: dict[str, Any]) -> Any:
        result = await connection.call_tool(tool.name, args, may_repeat=effect is Effect.READ)
        if result.is_error:
            raise McpToolFailed(connection.name, tool.name, error_text(result))
        if structured:
            return result.structured_content
        answer: dict[str, Any] = {"content": content_blocks(result)}
        if result.structured_content is not None:
            answer["structured"] = result.structured_content
        return answer

    return run


def family_tools(
    config: McpServerConfig, connection: McpConnection, listed: Iterable[types.Tool]
) -> tuple[ToolFamily, list[RegisteredTool]]:
    """The family of server `config.name` and its tools; a tool whose schema or name breaks
    the contract is left out with one log line, never served half-checked."""
    family_id = config.family_id
    specs: list[tuple[types.Tool, ToolSpec]] = []
    seen: set[str] = set()
    for tool in listed:
        tool_id = f"{family_id}:{action_name(tool.name)}"
        if tool_id in seen:
            log.warning(
                "MCP server %s: tool %r left out: its id %s is taken",
                config.name,
                tool.name,
                tool_id,
            )
            continue
        effect = effect_of(tool)
        title = tool.title or (tool.annotations.title if tool.annotations else None) or tool.name
        spec = ToolSpec(
            id=tool_id,
            title=title[:200],
            description=(tool.description or title)[:MAX_DESCRIPTION],
            input_schema=tool.input_schema,
            output_schema=tool.output_schema if tool.output_schema is not None else CONTENT_SCHEMA,
            run=_runner(connection, tool, effect),
            effect=effect,
            timeout_s=config.timeout_s,
        )
        specs.append((tool, spec))
        seen.add(tool_id)
    title = f"MCP: {config.name}"
    description = f"Tools of the MCP server {config.name!r} ({config.transport})."
    draft = ToolFamily(id=family_id, title=title, description=description, tools=())
    kept = []
    for tool, spec in specs:
        problems = check_tool(PLUGIN, draft, spec)
        if problems:
            log.warning(
                "MCP server %s: tool %r left out: %s", config.name, tool.name, problems[0].message
            )
            continue
        kept.append(spec)
    family = ToolFamily(id=family_id, title=title, description=description, tools=tuple(kept))
    return family, [
        RegisteredTool(
            spec=spec,
            family=family,
            plugin=PLUGIN,
            input_validator=Draft202012Validator(spec.input_schema),
            output_validator=Draft202012Validator(spec.output_schema),
            source="mcp",
        )
        for spec in kept
    ]
