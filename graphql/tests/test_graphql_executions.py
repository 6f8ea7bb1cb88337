"""Executions over GraphQL: run an agent, read one run, page an agent's runs, cancel a run."""

from __future__ import annotations

import time
from typing import Any

CREATE = """mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } } }"""
EXECUTE = """mutation($a: ID!, $input: JSON!, $p: RunParametersInput) {
  executeAgent(agentId: $a, input: $input, parameters: $p) { id status output attempts } }"""
EXECUTION = """query($id: ID!) { execution(id: $id) {
  id agentId status input output error executor attempts steps } }"""
EXECUTIONS = """query($a: ID!, $first: Int!, $after: String) {
  executions(agentId: $a, first: $first, after: $after) {
    nodes { id input } endCursor hasNextPage } }"""
CANCEL = """mutation($id: ID!) { cancelExecution(id: $id) { id status error attempts } }"""


def scripted_agent(gql: Any, headers: dict[str, str], reply: str, delay_ms: int = 0) -> str:
    config = {"model": "scripted", "model_options": {"script": [{"content": reply}],
                                                      "delay_ms": delay_ms}}  # fmt: skip
    body = gql(CREATE, {"input": {"name": "g", "tools": [], "config": config}}, headers)
    assert "errors" not in body, body
    return str(body["data"]["createAgent"]["agent"]["id"])


def data(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]
    return found


def test_execution_and_executions_read_what_ran(gql, make_user) -> None:
    owner, stranger = make_user(), make_user()
    agent_id = scripted_agent(gql, owner, "hello from graphql")
    ids = [
        data(gql(EXECUTE, {"a": agent_id, "input": f"turn {i}"}, owner))["executeAgent"]["id"]
        for i in range(3)
    ]
    one = data(gql(EXECUTION, {"id": ids[0]}, owner))["execution"]
    assert one == one | {
        "id": ids[0], "agentId": agent_id, "status": "succeeded", "input": "turn 0",
        "output": {"message": "hello from graphql"}, "error": None, "executor": "inline",
        "attempts": 1,
    }  # fmt: skip
    assert [step["type"] for step in one["steps"]] == ["model_call"]

    first = data(gql(EXECUTIONS, {"a": agent_id, "first": 2}, owner))["executions"]
    assert [node["id"] for node in first["nodes"]] == [ids[2], ids[1]]  # newest first
    assert first["hasNextPage"] is True
    rest = data(gql(EXECUTIONS, {"a": agent_id, "first": 2, "after": first["endCursor"]}, owner))
    assert [node["input"] for node in rest["executions"]["nodes"]] == ["turn 0"]
    assert rest["executions"]["hasNextPage"] is False
    assert rest["executions"]["endCursor"] is None

    for query, variables in (
        (EXECUTION, {"id": ids[0]}),
        (EXECUTIONS, {"a": agent_id, "first": 1}),
    ):
        hidden = gql(query, variables, stranger)
        assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND", hidden
    bad_cursor = gql(EXECUTIONS, {"a": agent_id, "first": 1, "after": "garbage"}, owner)
    assert bad_cursor["errors"][0]["extensions"]["code"] == "BAD_REQUEST", bad_cursor


def test_cancel_execution_stops_a_running_run(gql, make_user) -> None:
    headers = make_user()
    agent_id = scripted_agent(gql, headers, "never said", delay_ms=60_000)
    started = data(gql(EXECUTE, {"a": agent_id, "input": "go", "p": {"wait": False}}, headers))
    execution_id = started["executeAgent"]["id"]
    deadline = time.monotonic() + 30
    status = started["executeAgent"]["status"]
    while status == "queued" and time.monotonic() < deadline:
        time.sleep(0.02)
        status = data(gql(EXECUTION, {"id": execution_id}, headers))["execution"]["status"]
    assert status == "running"
    cancelled = data(gql(CANCEL, {"id": execution_id}, headers))["cancelExecution"]
    assert cancelled == {
        "id": execution_id, "status": "cancelled", "error": "cancelled on request", "attempts": 1,
    }  # fmt: skip
    again = data(gql(CANCEL, {"id": execution_id}, headers))["cancelExecution"]
    assert again["status"] == "cancelled"  # a finished run is returned unchanged
    stranger = make_user()
    refused = gql(CANCEL, {"id": execution_id}, stranger)
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND", refused
