"""Hostile requests at `/mcp`: malformed bodies and JSON-RPC messages with any parameters get
a 4xx or a JSON-RPC error, never a 500, a stack trace in the log, or a run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.e2e.runs import create_agent, scripted
from tests.support.hostile_json import HOSTILE_BODIES, VALUES, HostileBody

ACCEPT = "application/json, text/event-stream"
METHODS = st.sampled_from(
    ["tools/list", "tools/call", "initialize", "ping", "resources/list", "nope", ""]
)


@pytest.fixture
def agent_tool(
    client: TestClient, make_user: Callable[..., dict[str, str]]
) -> tuple[dict[str, str], str, str]:
    headers = make_user()
    agent_id = create_agent(client, headers, [], scripted())
    listed = client.post(
        "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
        headers={**headers, "Accept": ACCEPT},
    )  # fmt: skip
    assert listed.status_code == 200, listed.text
    (tool,) = listed.json()["result"]["tools"]
    return headers, agent_id, str(tool["name"])


def no_trace(caplog: pytest.LogCaptureFixture) -> None:
    assert not any(record.exc_info for record in caplog.records), [
        record.getMessage() for record in caplog.records
    ]


def test_malformed_bodies_are_refused_without_a_500(
    client: TestClient, agent_tool: tuple[dict[str, str], str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    headers, agent_id, _ = agent_tool
    caplog.set_level(logging.INFO)

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
    @given(body=HOSTILE_BODIES)
    def attack(body: HostileBody) -> None:
        caplog.clear()
        response = client.post(
            "/mcp", content=body.content,
            headers={**headers, "Accept": ACCEPT, "Content-Type": body.content_type},
        )  # fmt: skip
        assert 200 <= response.status_code < 500, (response.status_code, response.text[:300])
        no_trace(caplog)

    attack()
    assert client.get(f"/agents/{agent_id}/executions", headers=headers).json()["executions"] == []


def test_json_rpc_messages_with_any_parameters_never_fail_the_server(
    client: TestClient, agent_tool: tuple[dict[str, str], str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    headers, agent_id, tool = agent_tool
    caplog.set_level(logging.INFO)

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
    @given(
        method=METHODS,
        params=VALUES,
        arguments=st.dictionaries(st.sampled_from(["input", "thread_id", "x"]), VALUES, max_size=3),
        named=st.booleans(),
    )
    def attack(method: str, params: Any, arguments: dict[str, Any], named: bool) -> None:
        caplog.clear()
        if method == "tools/call" and named:
            params = {"name": tool, "arguments": arguments}
        if isinstance(arguments.get("input"), str) and method == "tools/call" and named:
            params["arguments"] = {**arguments, "input": ""}  # never a real run
        message = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
        response = client.post("/mcp", json=message, headers={**headers, "Accept": ACCEPT})
        assert 200 <= response.status_code < 500, (response.status_code, response.text[:300])
        if response.status_code == 200 and response.content:
            answer = response.json()
            assert ("result" in answer) != ("error" in answer), answer
        no_trace(caplog)

    attack()
    assert client.get(f"/agents/{agent_id}/executions", headers=headers).json()["executions"] == []
