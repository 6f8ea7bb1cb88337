"""An agent's own tools over MCP, at `/mcp/agents/{agent_id}`: `tools/list` gives the tools the
agent declares (their JSON Schemas, and hints from their effect), `tools/call` runs one directly
(`pasar_core.executions.tool_calls`): an execution of the agent with its scopes, grants,
secrets, approval policy, rate limit, steps, events and audit, with no model.

A call whose effect needs approval does not run: the answer is an error naming the execution
and how to decide it; once approved the execution runs the call once. Repeating the call while
it waits answers the same execution.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pasar_core.errors import PasarError, ToolInputInvalid
from pasar_core.executions import service as executions
from pasar_core.executions import tool_calls
from pasar_core.rate_limits import RouteClass
from pasar_core.specs import Effect
from starlette.requests import Request

from pasar.rest.requests import located_caller, runs_of, services_of

WAIT_S = 120.0
MAX_ARGUMENTS_BYTES = 1_000_000


def _request(ctx: ServerRequestContext[Any, Any]) -> Request:
    request = ctx.request
    if not isinstance(request, Request):  # only the HTTP mount serves this server
        raise MCPError(code=types.INTERNAL_ERROR, message="no HTTP request")
    return request


def _mcp_tool(offered: tool_calls.OfferedTool) -> types.Tool:
    spec = offered.spec
    approval = " Calls wait for a person's approval." if offered.needs_approval else ""
    return types.Tool(
        name=spec.langchain_name,
        title=spec.title,
        description=spec.description + approval,
        input_schema=dict(spec.input_schema),
        annotations=types.ToolAnnotations(
            title=spec.title,
            read_only_hint=spec.effect is Effect.READ,
            destructive_hint=spec.effect is Effect.DESTRUCTIVE,
        ),
    )


def _failure(text: str, **structured: Any) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=text)], structured_content=structured, is_error=True
    )


def approval_text(execution_id: str, tool: str) -> str:
    return (
        f"AWAITING_APPROVAL: execution {execution_id} waits for a person to approve {tool}; "
        f"approve or reject with POST /executions/{execution_id}/approval "
        '({"decision": "approve"}), GraphQL decideApproval, or the dashboard '
        f"(/#/runs/{execution_id}); the call then runs once. "
        f"Read the outcome with GET /executions/{execution_id}"
    )


def answer(view: executions.ExecutionView, tool_id: str) -> types.CallToolResult:
    """The MCP result of a direct call's execution as it stands."""
    execution_id = str(view.id)
    found: dict[str, Any] = {"execution_id": execution_id, "status": view.status}
    if view.status == "succeeded":
        result = (view.output or {}).get("result")
        text = result if isinstance(result, str) else json.dumps(result, default=str)
        return types.CallToolResult(
            content=[types.TextContent(text=text)], structured_content={**found, "result": result}
        )
    if view.status == "awaiting_approval":
        return _failure(approval_text(execution_id, tool_id), **found)
    if view.status == "awaiting_authorization":
        return _failure(
            f"AUTH_REQUIRED: execution {execution_id} waits for OAuth consent; open "
            f"{view.auth_url} and the call then runs",
            **found, auth_url=view.auth_url,
        )  # fmt: skip
    if not view.finished:
        return _failure(
            f"execution {execution_id} is still {view.status}: read GET /executions/{execution_id}",
            **found,
        )
    return _failure(f"{view.error}", **found)


def _arguments(params: types.CallToolRequestParams) -> dict[str, Any]:
    arguments = params.arguments or {}
    if len(json.dumps(arguments, default=str)) > MAX_ARGUMENTS_BYTES:
        raise MCPError(code=types.INVALID_PARAMS, message="invalid arguments: too large")
    return dict(arguments)


def build_agent_tools_server() -> Server[Any]:
    async def on_list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        request = _request(ctx)
        principal = await located_caller(request)
        try:
            offered = await tool_calls.agent_tools(
                runs_of(request), principal, request.path_params["agent_id"]
            )
        except PasarError as error:
            raise MCPError(
                code=types.INVALID_REQUEST, message=f"{error.code}: {error.message}"
            ) from None
        return types.ListToolsResult(tools=[_mcp_tool(tool) for tool in offered])

    async def on_call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        request = _request(ctx)
        principal = await located_caller(request)
        runs, agent_id = runs_of(request), request.path_params["agent_id"]
        try:
            offered = await tool_calls.agent_tools(runs, principal, agent_id)
        except PasarError as error:
            return _failure(f"{error.code}: {error.message}")
        by_name = {tool.spec.langchain_name: tool.spec.id for tool in offered}
        tool_id = by_name.get(params.name)
        if tool_id is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"no tool named {params.name!r}")
        arguments = _arguments(params)
        limiter = services_of(request).rate_limiter

        async def charge() -> None:  # a new execution only: polling a pending call is free
            await limiter.check(RouteClass.RUNS, principal, principal.source or "")

        try:
            view = await tool_calls.start_tool_call(
                runs, principal, agent_id, tool_id, arguments, wait_s=WAIT_S, charge=charge
            )
        except ToolInputInvalid as error:
            raise MCPError(
                code=types.INVALID_PARAMS, message=f"invalid arguments: {error.message}"
            ) from None
        except PasarError as error:
            return _failure(f"{error.code}: {error.message}")
        return answer(view, tool_id)

    return Server("pasar-agent-tools", on_list_tools=on_list_tools, on_call_tool=on_call_tool)
