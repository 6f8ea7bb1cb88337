"""An agent's own tools over MCP at `/mcp/agents/{id}`, driven by the official SDK's client
against the app served on a loopback port: listing with schemas and effect hints, direct calls
recorded as executions, approval of a write (runs once), rejection (never runs), and refusals."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from pasar_core.settings import Settings

from pasar.app import create_app
from tests.e2e.runs import scripted
from tests.mcp.test_mcp_server import agent, api_key, sign_up, text
from tests.support.servers import serve_in_thread

WRITE_ASKS = {"approval": {"require_for": ["write", "send", "destructive"]}}


@pytest.fixture
def base(pasar_settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(pasar_settings), lifespan="on") as url:
        yield url


async def _session(url: str, key: str, action: Any) -> Any:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return await action(session)


def on_agent(base: str, agent_id: str, key: str, action: Any) -> Any:
    return asyncio.run(_session(f"{base}/mcp/agents/{agent_id}", key, action))


def listed(base: str, agent_id: str, key: str) -> dict[str, types.Tool]:
    async def action(session: ClientSession) -> list[types.Tool]:
        return (await session.list_tools()).tools

    return {tool.name: tool for tool in on_agent(base, agent_id, key, action)}


def called(
    base: str, agent_id: str, key: str, name: str, arguments: dict[str, Any]
) -> types.CallToolResult:
    async def action(session: ClientSession) -> types.CallToolResult:
        return await session.call_tool(name, arguments)

    result: types.CallToolResult = on_agent(base, agent_id, key, action)
    return result


def refused(base: str, agent_id: str, key: str, name: str, arguments: Any) -> str:
    async def action(session: ClientSession) -> str:
        try:
            await session.call_tool(name, arguments)
        except MCPError as error:
            return error.error.message
        raise AssertionError("the call was answered")

    message: str = on_agent(base, agent_id, key, action)
    return message


def files_of(settings: Settings, base: str, headers: dict[str, str]) -> Path:
    """The files plugin's root of the signed-in user (the access token's subject)."""
    payload = headers["Authorization"].removeprefix("Bearer ").split(".")[1]
    user_id = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
    return settings.files_root / str(user_id)


def executions(base: str, headers: dict[str, str], agent_id: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{base}/agents/{agent_id}/executions", headers=headers)
    assert answer.status_code == 200, answer.text
    runs: list[dict[str, Any]] = answer.json()["executions"]
    return runs


def streamed_events(base: str, headers: dict[str, str], execution_id: str) -> list[str]:
    """The event types `GET /executions/{id}/events` sends, up to the final status."""
    types_: list[str] = []
    url = f"{base}/executions/{execution_id}/events"
    with httpx.stream("GET", url, headers=headers, timeout=30) as answer:
        assert answer.status_code == 200
        for line in answer.iter_lines():
            if line.startswith("event: "):
                types_.append(line.removeprefix("event: "))
            elif line.startswith("data: ") and '"status": "succeeded"' in line:
                return types_
    return types_


def test_an_agents_tools_are_listed_with_schemas_and_effect_hints(base: str) -> None:
    headers = sign_up(base, "tools-list@example.com")
    key = api_key(base, headers)
    agent_id = agent(base, headers, "notes", ["txt:read", "txt:write"], scripted())
    tools = listed(base, agent_id, key)
    assert sorted(tools) == ["txt_read", "txt_write"]  # only the tools it declares
    read, write = tools["txt_read"], tools["txt_write"]
    assert read.input_schema["required"] == ["path"]
    assert set(write.input_schema["required"]) == {"path", "content"}
    assert read.annotations is not None
    assert read.annotations.read_only_hint is True
    assert write.annotations is not None
    assert write.annotations.read_only_hint is False
    assert write.annotations.destructive_hint is False


def test_a_direct_call_runs_the_tool_as_a_recorded_execution(
    base: str, pasar_settings: Settings
) -> None:
    headers = sign_up(base, "tools-call@example.com")
    key = api_key(base, headers)
    agent_id = agent(base, headers, "notes", ["txt:read", "txt:write"], scripted())
    written = called(base, agent_id, key, "txt_write", {"path": "a.txt", "content": "tide"})
    assert not written.is_error, written
    assert (files_of(pasar_settings, base, headers) / "a.txt").read_text() == "tide"
    read = called(base, agent_id, key, "txt_read", {"path": "a.txt"})
    assert not read.is_error, read
    assert "tide" in text(read)
    execution_id = read.structured_content["execution_id"]
    run = httpx.get(f"{base}/executions/{execution_id}", headers=headers).json()
    assert (run["agent_id"], run["status"]) == (agent_id, "succeeded")
    assert run["input"] == {"tool": "txt:read", "arguments": {"path": "a.txt"}}
    assert [step["type"] for step in run["steps"]] == ["tool_call", "tool_result"]
    assert run["steps"][0]["tool"] == "txt:read"
    # Its events stream as any run's do (server-sent events, in order, to its final status).
    assert streamed_events(base, headers, execution_id) == [
        "status", "status", "tool_call", "tool_result", "status"
    ]  # fmt: skip
    # Both calls are in the agent's run history, newest first; no model was asked.
    history = executions(base, headers, agent_id)
    assert [item["status"] for item in history] == ["succeeded", "succeeded"]
    assert not any(step["type"] == "model_call" for item in history for step in item["steps"])


def test_a_write_that_needs_approval_runs_once_after_approval(
    base: str, pasar_settings: Settings
) -> None:
    headers = sign_up(base, "tools-approve@example.com")
    key = api_key(base, headers)
    agent_id = agent(base, headers, "writer", ["txt:write"], scripted(**WRITE_ASKS))
    target = files_of(pasar_settings, base, headers) / "log.txt"
    arguments = {"path": "log.txt", "content": "once"}
    first = called(base, agent_id, key, "txt_write", arguments)
    assert first.is_error
    execution_id = first.structured_content["execution_id"]
    assert first.structured_content["status"] == "awaiting_approval"
    assert f"POST /executions/{execution_id}/approval" in text(first)
    assert "decideApproval" in text(first)
    assert not target.exists()  # it did not run
    # The same call while it waits is the same execution, not a second pending one.
    again = called(base, agent_id, key, "txt_write", arguments)
    assert again.structured_content["execution_id"] == execution_id
    assert len(executions(base, headers, agent_id)) == 1
    decided = httpx.post(
        f"{base}/executions/{execution_id}/approval", json={"decision": "approve"},
        headers=headers, timeout=60,
    )  # fmt: skip
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "succeeded", decided.json()
    assert target.read_text() == "once"
    steps = decided.json()["steps"]
    assert [step["type"] for step in steps].count("tool_call") == 1  # it ran exactly once
    # Once finished, the same call again is a new call (it waits for approval again).
    later = called(base, agent_id, key, "txt_write", arguments)
    assert later.structured_content["execution_id"] != execution_id
    assert later.structured_content["status"] == "awaiting_approval"


def test_a_rejected_call_never_runs(base: str, pasar_settings: Settings) -> None:
    headers = sign_up(base, "tools-reject@example.com")
    key = api_key(base, headers)
    agent_id = agent(base, headers, "writer", ["txt:write"], scripted(**WRITE_ASKS))
    first = called(base, agent_id, key, "txt_write", {"path": "no.txt", "content": "x"})
    execution_id = first.structured_content["execution_id"]
    decided = httpx.post(
        f"{base}/executions/{execution_id}/approval", json={"decision": "reject"},
        headers=headers, timeout=60,
    )  # fmt: skip
    assert decided.status_code == 200, decided.text
    run = decided.json()
    assert run["status"] == "failed"
    assert run["error"].startswith("REJECTED")
    assert not any(step["type"] == "tool_call" for step in run["steps"])
    assert not (files_of(pasar_settings, base, headers) / "no.txt").exists()


def test_another_users_agent_is_refused(base: str) -> None:
    owner = sign_up(base, "tools-owner@example.com")
    agent_id = agent(base, owner, "private", ["txt:read"], scripted())
    stranger = api_key(base, sign_up(base, "tools-stranger@example.com"))
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    answer = httpx.post(
        f"{base}/mcp/agents/{agent_id}", json=body,
        headers={"Authorization": f"Bearer {stranger}", "Accept": "application/json, text/event-stream"},
    )  # fmt: skip
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "NOT_FOUND"
    for bad in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        missing = httpx.post(
            f"{base}/mcp/agents/{bad}", json=body,
            headers={"Authorization": f"Bearer {stranger}", "Accept": "application/json"},
        )  # fmt: skip
        assert missing.status_code == 404, missing.text
    assert executions(base, owner, agent_id) == []


def test_a_tool_the_agent_does_not_declare_is_refused(base: str) -> None:
    headers = sign_up(base, "tools-undeclared@example.com")
    key = api_key(base, headers)
    agent_id = agent(base, headers, "reader", ["txt:read"], scripted())
    message = refused(base, agent_id, key, "txt_write", {"path": "x.txt", "content": "x"})
    assert message == "no tool named 'txt_write'"
    assert refused(base, agent_id, key, "nope", {}) == "no tool named 'nope'"
    assert executions(base, headers, agent_id) == []


def test_a_viewer_key_lists_but_may_not_call(base: str) -> None:
    headers = sign_up(base, "tools-viewer@example.com")
    agent_id = agent(base, headers, "reader", ["txt:read"], scripted())
    created = httpx.post(f"{base}/api-keys", json={"name": "ro", "role": "viewer"}, headers=headers)
    viewer = str(created.json()["key"])
    assert list(listed(base, agent_id, viewer)) == ["txt_read"]
    answer = called(base, agent_id, viewer, "txt_read", {"path": "a.txt"})
    assert answer.is_error
    assert text(answer).startswith("INSUFFICIENT_ROLE:")
    assert executions(base, headers, agent_id) == []


def test_a_revoked_key_is_refused(base: str) -> None:
    headers = sign_up(base, "tools-revoked@example.com")
    agent_id = agent(base, headers, "reader", ["txt:read"], scripted())
    created = httpx.post(f"{base}/api-keys", json={"name": "gone"}, headers=headers).json()
    assert list(listed(base, agent_id, created["key"])) == ["txt_read"]
    assert httpx.delete(f"{base}/api-keys/{created['id']}", headers=headers).status_code == 204
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    answer = httpx.post(
        f"{base}/mcp/agents/{agent_id}", json=body,
        headers={"Authorization": f"Bearer {created['key']}", "Accept": "application/json"},
    )  # fmt: skip
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "UNAUTHENTICATED"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


def test_hostile_arguments_get_typed_errors_and_run_nothing(base: str) -> None:
    headers = sign_up(base, "tools-hostile@example.com")
    key = api_key(base, headers)
    agent_id = agent(base, headers, "reader", ["txt:read"], scripted())

    async def attack(session: ClientSession, arguments: dict[str, Any]) -> None:
        try:
            result = await session.call_tool("txt_read", arguments)
        except MCPError as error:  # arguments the schema refuses: a protocol error, typed
            assert error.error.code == types.INVALID_PARAMS, error
            assert error.error.message.startswith("invalid arguments: ")
            return
        # Arguments that fit the schema run: the tool answers (e.g. no such file), typed.
        if result.is_error:
            assert result.structured_content["status"] == "failed"
            assert text(result).split(":")[0].isupper()

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(arguments=st.dictionaries(st.text(max_size=10), JSON, max_size=4)
           | st.fixed_dictionaries({"path": JSON}))  # fmt: skip
    def check(arguments: dict[str, Any]) -> None:
        async def action(session: ClientSession) -> None:
            await attack(session, arguments)

        on_agent(base, agent_id, key, action)

    check()
    # The server still answers, and every run it recorded ended in a final status.
    assert list(listed(base, agent_id, key)) == ["txt_read"]
    assert all(
        run["status"] in ("succeeded", "failed") for run in executions(base, headers, agent_id)
    )


def test_a_call_without_consent_answers_the_consent_link_and_runs_nothing(
    google_settings: Settings,
) -> None:
    with serve_in_thread(create_app(google_settings), lifespan="on") as served:
        headers = sign_up(served, "tools-consent@example.com")
        key = api_key(served, headers)
        agent_id = agent(served, headers, "mail", ["gmail:read"], scripted())
        answer = called(served, agent_id, key, "gmail_read", {"query": "is:unread"})
        assert answer.is_error
        structured = answer.structured_content
        assert structured["status"] == "awaiting_authorization"
        assert text(answer).startswith("AUTH_REQUIRED: ")
        assert "/auth/google/start?state=" in structured["auth_url"]
        assert structured["auth_url"] in text(answer)
        run = httpx.get(f"{served}/executions/{structured['execution_id']}", headers=headers)
        assert run.json()["steps"] == []  # paused before the tool was called


def test_repeating_a_pending_call_costs_no_runs_budget(pasar_settings: Settings) -> None:
    """Only a new execution pays the runs budget: a client polling its call that awaits
    approval is answered that execution, however often it asks."""
    settings = pasar_settings.with_overrides(rate_limit_runs="2/3600")
    with serve_in_thread(create_app(settings), lifespan="on") as base:
        headers = sign_up(base, "tools-budget@example.com")
        key = api_key(base, headers)
        agent_id = agent(base, headers, "writer", ["txt:write"], scripted(**WRITE_ASKS))
        arguments = {"path": "poll.txt", "content": "x"}
        pending = called(base, agent_id, key, "txt_write", arguments).structured_content
        for _ in range(3):
            again = called(base, agent_id, key, "txt_write", arguments)
            assert again.structured_content["execution_id"] == pending["execution_id"], text(again)
        other = called(base, agent_id, key, "txt_write", {"path": "b.txt", "content": "y"})
        assert other.structured_content["status"] == "awaiting_approval", text(other)
        over = called(base, agent_id, key, "txt_write", {"path": "c.txt", "content": "z"})
        assert over.is_error
        assert text(over).startswith("RATE_LIMITED"), text(over)


def test_a_call_needs_one_connection_at_a_time(pasar_settings: Settings) -> None:
    """The tool and its arguments are checked before the call's transaction opens: on a pool
    of one connection a call is answered (it used to hold one and wait for a second)."""
    settings = pasar_settings.with_overrides(db_pool_size=1, db_pool_timeout_s=5)
    with serve_in_thread(create_app(settings), lifespan="on") as base:
        headers = sign_up(base, "tools-one-connection@example.com")
        key = api_key(base, headers)
        agent_id = agent(base, headers, "writer", ["txt:write"], scripted(**WRITE_ASKS))
        result = called(base, agent_id, key, "txt_write", {"path": "one.txt", "content": "x"})
        assert result.structured_content["status"] == "awaiting_approval", text(result)
