"""pasar as an MCP server: the official SDK's client lists and calls the caller's agents at
`/mcp` on the app served for real on a loopback port; credentials, roles and approvals apply
as for REST, and each call is a recorded execution."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD

from pasar.app import create_app
from tests.e2e.runs import call as tool_call
from tests.e2e.runs import scripted
from tests.support.servers import serve_in_thread


@pytest.fixture
def base(pasar_settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(pasar_settings), lifespan="on") as url:
        yield url


def sign_up(base: str, email: str) -> dict[str, str]:
    credentials = {"email": email, "password": TEST_PASSWORD}
    assert httpx.post(f"{base}/auth/signup", json=credentials).status_code == 201
    token = httpx.post(f"{base}/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def api_key(base: str, headers: dict[str, str]) -> str:
    created = httpx.post(f"{base}/api-keys", json={"name": "mcp"}, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


def agent(base: str, headers: dict[str, str], name: str, tools: list[str], config: Any) -> str:
    body = {"name": name, "tools": tools, "config": config}
    created = httpx.post(f"{base}/agents", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["agent_id"])


async def _with_session(base: str, key: str, action: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return await action(session)


def mcp(base: str, key: str, action: Any) -> Any:
    return asyncio.run(_with_session(base, key, action))


def list_tools(base: str, key: str) -> list[types.Tool]:
    async def action(session: ClientSession) -> list[types.Tool]:
        return (await session.list_tools()).tools

    tools: list[types.Tool] = mcp(base, key, action)
    return tools


def call(base: str, key: str, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    async def action(session: ClientSession) -> types.CallToolResult:
        return await session.call_tool(name, arguments)

    result: types.CallToolResult = mcp(base, key, action)
    return result


def text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


def refusal(base: str, key: str, name: str, arguments: dict[str, Any]) -> str:
    """The protocol error (not a tool result) the server answers a call with."""

    async def action(session: ClientSession) -> str:
        try:
            await session.call_tool(name, arguments)
        except MCPError as error:
            return error.error.message
        raise AssertionError("the call was answered")

    message: str = mcp(base, key, action)
    return message


def test_an_mcp_client_lists_and_runs_the_callers_agents(base: str) -> None:
    headers = sign_up(base, "mcp-owner@example.com")
    key = api_key(base, headers)
    agent_id = agent(base, headers, "Harbour Guide", [], scripted(
        {"content": "The tide turns at noon."}
    ))  # fmt: skip
    tools = {tool.name: tool for tool in list_tools(base, key)}
    name = f"agent_harbour_guide_{agent_id.replace('-', '')[:8]}"
    assert list(tools) == [name]
    assert tools[name].input_schema["required"] == ["input"]
    result = call(base, key, name, {"input": "when does the tide turn?"})
    assert not result.is_error, result
    assert [block.text for block in result.content if isinstance(block, types.TextContent)] == [
        "The tide turns at noon."
    ]
    structured = result.structured_content
    assert structured["status"] == "succeeded"
    # The call ran through the normal execution path: a recorded execution of the agent.
    run = httpx.get(f"{base}/executions/{structured['execution_id']}", headers=headers).json()
    assert (run["agent_id"], run["status"], run["input"]) == (
        agent_id, "succeeded", "when does the tide turn?"
    )  # fmt: skip


def test_another_users_key_sees_none_of_the_agents(base: str) -> None:
    owner = sign_up(base, "mcp-a@example.com")
    agent_id = agent(base, owner, "private", [], scripted())
    stranger = api_key(base, sign_up(base, "mcp-b@example.com"))
    assert list_tools(base, stranger) == []
    # Even by its exact name: for this caller there is no such tool (a protocol error).
    name = f"agent_private_{agent_id.replace('-', '')[:8]}"
    assert refusal(base, stranger, name, {"input": "hi"}) == f"no tool named '{name}'"
    runs = httpx.get(f"{base}/agents/{agent_id}/executions", headers=owner).json()
    assert runs["executions"] == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer pk_live_wrong"},
     {"Authorization": "Basic dXNlcjpwYXNz"}],
)  # fmt: skip
def test_requests_without_a_valid_credential_get_401(base: str, headers: dict[str, str]) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    answer = httpx.post(
        f"{base}/mcp", json=body,
        headers={**headers, "Accept": "application/json, text/event-stream"},
    )  # fmt: skip
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "UNAUTHENTICATED"
    assert answer.headers["www-authenticate"] == "Bearer"


def test_a_run_that_needs_approval_answers_an_error_naming_the_execution(base: str) -> None:
    headers = sign_up(base, "mcp-approve@example.com")
    key = api_key(base, headers)
    config = scripted(tool_call("txt:read", path="notes.txt"), approval={"require_for": ["read"]})
    agent_id = agent(base, headers, "reader", ["txt:read"], config)
    name = f"agent_reader_{agent_id.replace('-', '')[:8]}"
    result = call(base, key, name, {"input": "read my notes"})
    assert result.is_error
    structured = result.structured_content
    assert structured["status"] == "awaiting_approval"
    execution_id = structured["execution_id"]
    assert f"POST /executions/{execution_id}/approval" in text(result)
    # The run waits, as a REST run would; a decision through REST lets it go on.
    run = httpx.get(f"{base}/executions/{execution_id}", headers=headers).json()
    assert run["pending_approval"]["tool"] == "txt:read"
    decided = httpx.post(
        f"{base}/executions/{execution_id}/approval", json={"decision": "reject"},
        headers=headers, timeout=60,
    )  # fmt: skip
    assert decided.status_code == 200, decided.text


def test_a_viewer_key_lists_but_may_not_run(base: str) -> None:
    headers = sign_up(base, "mcp-viewer@example.com")
    agent_id = agent(base, headers, "guide", [], scripted())
    created = httpx.post(f"{base}/api-keys", json={"name": "ro", "role": "viewer"}, headers=headers)
    assert created.status_code == 201, created.text
    viewer = str(created.json()["key"])
    name = f"agent_guide_{agent_id.replace('-', '')[:8]}"
    assert [tool.name for tool in list_tools(base, viewer)] == [name]
    refused = call(base, viewer, name, {"input": "hi"})
    assert refused.is_error
    assert text(refused).startswith("INSUFFICIENT_ROLE:")


def test_bad_arguments_are_refused_before_any_run(base: str) -> None:
    headers = sign_up(base, "mcp-args@example.com")
    key = api_key(base, headers)
    agent_id = agent(base, headers, "guide", [], scripted())
    name = f"agent_guide_{agent_id.replace('-', '')[:8]}"
    for arguments in ({}, {"input": ""}, {"input": 7}, {"input": "x" * 100_001},
                      {"input": "hi", "thread_id": ""}):  # fmt: skip
        assert refusal(base, key, name, arguments).startswith("invalid arguments: ")
    runs = httpx.get(f"{base}/agents/{agent_id}/executions", headers=headers).json()
    assert runs["executions"] == []


def test_a_revoked_key_is_refused_at_once(base: str) -> None:
    headers = sign_up(base, "mcp-revoke@example.com")
    created = httpx.post(f"{base}/api-keys", json={"name": "gone"}, headers=headers).json()
    assert list_tools(base, created["key"]) == []
    assert httpx.delete(f"{base}/api-keys/{created['id']}", headers=headers).status_code == 204
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    answer = httpx.post(
        f"{base}/mcp", json=body,
        headers={"Authorization": f"Bearer {created['key']}", "Accept": "application/json"},
    )  # fmt: skip
    assert answer.status_code == 401, answer.text


def test_tools_are_listed_page_by_page_and_any_page_is_callable(
    base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pasar.mcp_server.MAX_PAGE", 2)  # five agents make three pages
    headers = sign_up(base, "mcp-pages@example.com")
    key = api_key(base, headers)
    for index in range(5):
        agent(base, headers, f"Pager {index}", [], scripted({"content": f"page agent {index}"}))

    async def pages(session: ClientSession) -> list[tuple[list[str], str | None]]:
        found, cursor = [], None
        while True:
            listed = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
            found.append(([tool.name for tool in listed.tools], listed.next_cursor))
            if listed.next_cursor is None:
                return found
            cursor = listed.next_cursor

    listed = mcp(base, key, pages)
    assert [len(names) for names, _ in listed] == [2, 2, 1]
    names = [name for page, _ in listed for name in page]
    assert len(set(names)) == 5
    last = names[-1]  # on the last page: found for a call all the same
    result = call(base, key, last, {"input": "hello"})
    assert not result.is_error, result
    assert text(result).startswith("page agent ")

    async def bad_cursor(session: ClientSession) -> str:
        try:
            await session.list_tools(params=types.PaginatedRequestParams(cursor="not-a-cursor"))
        except MCPError as error:
            return str(error)
        raise AssertionError("an invalid cursor was accepted")

    assert "invalid cursor" in mcp(base, key, bad_cursor)
