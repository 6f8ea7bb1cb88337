"""A small MCP server for the tests, with the official SDK's low-level `Server`: over stdio
(`python -m tests.support.mcp_peer`) or streamable HTTP (`http_app()`), never off loopback.

Tools: `echo` (read-only), `Add-Note` (a write, structured output; the notes live in the
process), `fail` (answers `is_error`), `huge` (a result of `size` characters), `die` (the
process exits mid-call), `slow` (answers after `seconds`), `liar` (an answer
that does not fit its output schema), and `broken` (an input schema that is not JSON Schema).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.routing import Mount

TOOLS = [
    types.Tool(
        name="echo",
        description="Say the text back.",
        input_schema={
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
    types.Tool(
        name="Add-Note",
        description="Keep a note; answers how many notes are kept.",
        input_schema={
            "type": "object",
            "properties": {"note": {"type": "string"}},
            "required": ["note"],
        },
        output_schema={
            "type": "object",
            "properties": {"notes": {"type": "integer"}, "pid": {"type": "integer"}},
            "required": ["notes", "pid"],
        },
    ),
    types.Tool(
        name="fail",
        description="Always fails.",
        input_schema={"type": "object"},
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
    types.Tool(
        name="huge",
        description="A long text.",
        input_schema={"type": "object", "properties": {"size": {"type": "integer"}}},
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
    types.Tool(name="die", description="Exits mid-call.", input_schema={"type": "object"}),
    types.Tool(
        name="slow",
        description="Answers after `seconds`.",
        input_schema={"type": "object", "properties": {"seconds": {"type": "number"}}},
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
    types.Tool(
        name="liar",
        description="Its answer does not fit its output schema.",
        input_schema={"type": "object"},
        output_schema={
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "required": ["n"],
        },
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
    types.Tool(
        name="broken",
        description="Its schema is not JSON Schema.",
        input_schema={"type": "object", "properties": {"x": {"type": "no-such-type"}}},
    ),
]


def build_server() -> Server[Any]:
    notes: list[str] = []

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=TOOLS)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        args = params.arguments or {}
        if params.name == "echo":
            return types.CallToolResult(content=[types.TextContent(text=f"echo: {args['text']}")])
        if params.name == "Add-Note":
            notes.append(str(args["note"]))
            answer = {"notes": len(notes), "pid": os.getpid()}
            return types.CallToolResult(
                content=[types.TextContent(text=str(answer))], structured_content=answer
            )
        if params.name == "fail":
            return types.CallToolResult(
                content=[types.TextContent(text="the printer is on fire")], is_error=True
            )
        if params.name == "huge":
            text = "x" * int(args.get("size", 1_000_000))
            return types.CallToolResult(content=[types.TextContent(text=text)])
        if params.name == "die":
            os._exit(3)
        if params.name == "liar":
            return types.CallToolResult(
                content=[types.TextContent(text="n is a word")], structured_content={"n": "two"}
            )
        if params.name == "slow":
            await anyio.sleep(float(args.get("seconds", 0)))
            return types.CallToolResult(content=[types.TextContent(text="slept")])
        raise ValueError(f"unknown tool {params.name}")

    return Server("pasar-test-peer", on_list_tools=list_tools, on_call_tool=call_tool)


def http_app() -> Starlette:
    """The peer over streamable HTTP at `/mcp` (serve it with its lifespan on)."""
    manager = StreamableHTTPSessionManager(build_server())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    return Starlette(routes=[Mount("/mcp", app=manager.handle_request)], lifespan=lifespan)


async def serve_stdio() -> None:
    server = build_server()
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def serve_http(port: int) -> None:
    import uvicorn

    uvicorn.run(http_app(), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        serve_http(int(sys.argv[2]))
    else:
        anyio.run(serve_stdio)
