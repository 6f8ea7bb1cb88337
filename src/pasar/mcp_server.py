"""pasar as an MCP server at `/mcp` (streamable HTTP, the official SDK's session manager):
each agent the caller may run is one MCP tool, run through the normal execution path; and at
`/mcp/agents/{agent_id}`, one agent's own tools called directly (`pasar.mcp_agent_tools`).

Stateless: every HTTP request carries its own credential (`Authorization: Bearer` with a pasar
API key or access token) and is authenticated before the SDK sees it (401 otherwise), so any
server process can answer any request and nothing is kept between them. The caller's
organisation role and the policy table apply as for REST (`mcp.tools` to list, the agent's
`agents.execute` to call), and each call counts against the caller's `runs` rate limit.

A run that pauses for approval of a risky tool call (or for OAuth consent) is not waited on:
the MCP call answers with an error naming the execution, which goes on once someone decides
through REST or GraphQL (`POST /executions/{id}/approval`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from pasar_core.accounts.principal import Principal
from pasar_core.agents.service import MAX_PAGE, AgentView, list_agents
from pasar_core.authz.checks import require
from pasar_core.errors import PasarError
from pasar_core.executions import service as executions
from pasar_core.executions.requests import ExecuteRequest, RunParameters
from pasar_core.executions.tool_calls import agent_tools
from pasar_core.rate_limits import RouteClass
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from pasar.mcp_agent_tools import build_agent_tools_server
from pasar.rest.errors import pasar_error
from pasar.rest.requests import located_caller, runs_of, services_of

log = logging.getLogger("pasar.mcp")

WAIT_S = 120.0
MCP_OPERATIONS = ("mcp.tools", "agents.execute", "agents.read")
"""The policy operations the MCP surface names (listing, each agent's run, its own tools)."""
AGENT_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "input": {"type": "string", "minLength": 1, "description": "The message to the agent."},
        "thread_id": {
            "type": "string", "minLength": 1, "maxLength": 200,
            "description": "Continue this conversation (agents with thread memory).",
        },
    },
    "required": ["input"],
    "additionalProperties": False,
}  # fmt: skip
AGENT_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "execution_id": {"type": "string"},
        "status": {"type": "string"},
        "output": {"type": ["object", "null"]},
    },
    "required": ["execution_id", "status"],
}


def agent_tool_name(agent: AgentView) -> str:
    """`agent_<name>_<first 8 hex of the id>`: readable, and unique per agent."""
    slug = re.sub(r"[^a-z0-9]+", "_", agent.name.lower()).strip("_")[:40]
    return f"agent_{slug}_{agent.id.hex[:8]}" if slug else f"agent_{agent.id.hex[:8]}"


def _request(ctx: ServerRequestContext[Any, Any]) -> Request:
    request = ctx.request
    if not isinstance(request, Request):  # only the HTTP mount below serves this server
        raise MCPError(code=types.INTERNAL_ERROR, message="no HTTP request")
    return request


async def _principal(request: Request) -> Principal:
    principal: Principal = await located_caller(request)  # authenticated by the mount
    return principal


def _offset(cursor: str | None) -> int:
    """A `tools/list` cursor is the offset of the page it names (what `nextCursor` said)."""
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 9:
        raise MCPError(code=types.INVALID_PARAMS, message=f"invalid cursor {cursor[:40]!r}")
    return int(cursor)


async def _agent_page(
    request: Request, principal: Principal, offset: int
) -> tuple[list[AgentView], str | None]:
    """One page of the caller's agents from `offset`, and the cursor of the next one."""
    page = await list_agents(services_of(request), principal, limit=MAX_PAGE, offset=offset)
    return page, str(offset + len(page)) if len(page) == MAX_PAGE else None


async def _agent_named(request: Request, principal: Principal, name: str) -> AgentView | None:
    """The caller's agent whose tool is `name`, looked for page by page."""
    offset = 0
    while True:
        page, following = await _agent_page(request, principal, offset)
        for agent in page:
            if agent_tool_name(agent) == name:
                return agent
        if following is None:
            return None
        offset = int(following)


def _agent_tool(agent: AgentView) -> types.Tool:
    return types.Tool(
        name=agent_tool_name(agent),
        title=agent.name,
        description=f"Run the pasar agent {agent.name!r} on a message; answers its reply.",
        input_schema=AGENT_INPUT_SCHEMA,
        output_schema=AGENT_OUTPUT_SCHEMA,
    )


def _failure(text: str, **structured: Any) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=text)], structured_content=structured, is_error=True
    )


def _answer(view: executions.ExecutionView) -> types.CallToolResult:
    execution_id = str(view.id)
    found: dict[str, Any] = {"execution_id": execution_id, "status": view.status}
    if view.status == "succeeded":
        output = view.output or {}
        message = output.get("message")
        text = message if isinstance(message, str) else json.dumps(output)
        return types.CallToolResult(
            content=[types.TextContent(text=text)], structured_content={**found, "output": output}
        )
    if view.status == "awaiting_approval":
        pending = view.pending_approval or {}
        return _failure(
            f"execution {execution_id} waits for a human to approve {pending.get('tool')!r}: "
            f"POST /executions/{execution_id}/approval, then read GET /executions/{execution_id}",
            **found,
        )
    if view.status == "awaiting_authorization":
        return _failure(
            f"execution {execution_id} waits for OAuth consent: {view.auth_url}", **found
        )
    if not view.finished:
        return _failure(
            f"execution {execution_id} is still {view.status}: read GET /executions/{execution_id}",
            **found,
        )
    return _failure(f"execution {execution_id} {view.status}: {view.error}", **found)


def _execute_request(args: dict[str, Any]) -> ExecuteRequest:
    """The arguments of an agent tool as a run request; a protocol error when they do not fit."""
    problem = None
    if not isinstance(args.get("input"), str) or set(args) - {"input", "thread_id"}:
        problem = "give input (a string) and optionally thread_id, nothing else"
    else:
        try:
            return ExecuteRequest(
                input=args["input"],
                parameters=RunParameters(
                    wait=True, timeout_s=WAIT_S, thread_id=args.get("thread_id")
                ),
            )
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"][-1:])
            problem = f"{where}: {first['msg']}"
    raise MCPError(code=types.INVALID_PARAMS, message=f"invalid arguments: {problem}")


def build_mcp_server() -> Server[Any]:
    async def on_list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        request = _request(ctx)
        principal = await _principal(request)
        offset = _offset(params.cursor if params is not None else None)
        page, following = await _agent_page(request, principal, offset)
        return types.ListToolsResult(
            tools=[_agent_tool(agent) for agent in page], next_cursor=following
        )

    async def on_call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        request = _request(ctx)
        principal = await _principal(request)
        agent = await _agent_named(request, principal, params.name)
        if agent is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"no tool named {params.name!r}")
        body = _execute_request(params.arguments or {})
        try:
            await services_of(request).rate_limiter.check(
                RouteClass.RUNS, principal, principal.source or ""
            )
            view = await executions.start_execution(
                runs_of(request), principal, str(agent.id), body
            )
        except PasarError as error:
            return _failure(f"{error.code}: {error.message}")
        return _answer(view)

    return Server("pasar", on_list_tools=on_list_tools, on_call_tool=on_call_tool)


class McpEndpoint:
    """The ASGI app at `/mcp`: authenticates, checks the caller's role, then hands the request
    to the SDK (whose session manager runs for as long as the app's lifespan)."""

    def __init__(self) -> None:
        self.manager = _manager(build_mcp_server())
        self.agent_tools = _manager(build_agent_tools_server())

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.manager.run(), self.agent_tools.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        agent_id = request.path_params.get("agent_id")
        try:
            principal = await located_caller(request)
            require(principal, MCP_OPERATIONS[0])
            if agent_id is not None:  # another's (or no) agent: 404 before the protocol
                await agent_tools(runs_of(request), principal, agent_id)
        except PasarError as error:
            response = await pasar_error(request, error)
            await response(scope, receive, send)
            return
        manager = self.manager if agent_id is None else self.agent_tools
        await manager.handle_request(scope, receive, send)


def _manager(server: Server[Any]) -> StreamableHTTPSessionManager:
    return StreamableHTTPSessionManager(
        server,
        stateless=True,
        json_response=True,
        # Credentials are a bearer header, never ambient (cookies): a rebound DNS name
        # gains a page nothing it could not send itself.
        security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
