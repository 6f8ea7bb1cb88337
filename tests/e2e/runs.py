"""Drive agent runs through REST with the scripted model, and read their recorded tool steps."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

Headers = dict[str, str]


def call(tool_id: str, **args: Any) -> dict[str, Any]:
    """A scripted model reply that calls one tool (by its pasar id) with `args`."""
    return {"tool_calls": [{"name": tool_id.replace(":", "_"), "args": args}]}


def scripted(*replies: dict[str, Any], **config: Any) -> dict[str, Any]:
    """An agent config whose model plays `replies` in order, then says it is done."""
    script = [*replies, {"content": "done"}]
    return {"model": "scripted", "model_options": {"script": script}, **config}


def create_agent(
    client: TestClient, headers: Headers, tools: list[str], config: dict[str, Any]
) -> str:
    response = client.post(
        "/agents", json={"name": "e2e", "tools": tools, "config": config}, headers=headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["agent_id"])


MAX_APPROVALS = 20


def execute(
    client: TestClient,
    headers: Headers,
    agent_id: str,
    approved: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run the agent to its end (inline, wait=true) and return the finished execution.

    A run that pauses for a human decision on a risky call (`awaiting_approval`, for effects in
    the agent's approval policy) has that call approved and goes on, as often as it pauses;
    each approved call (`pending_approvals`: tool, args, ...) is appended to `approved`.
    """
    response = client.post(
        f"/agents/{agent_id}/execute",
        json={"input": "go", "parameters": {"wait": True, "timeout_s": 60}},
        headers=headers,
    )
    for _ in range(MAX_APPROVALS):
        if response.json().get("status") != "awaiting_approval":
            break
        pending = response.json()["pending_approvals"]
        if approved is not None:
            approved.extend(pending)
        decisions = [{"tool_call_id": call["tool_call_id"], "args_hash": call["args_hash"],
                      "decision": "approve"} for call in pending]  # fmt: skip
        response = client.post(
            f"/executions/{response.json()['execution_id']}/approval",
            json={"decisions": decisions},
            headers=headers,
        )
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    assert run["status"] == "succeeded", run
    assert run["output"] == {"message": "done"}, run
    return run


def run_tools(
    client: TestClient,
    headers: Headers,
    tools: list[str],
    *replies: dict[str, Any],
    **config: Any,
) -> list[dict[str, Any]]:
    """Create an agent with `tools` whose model makes the calls in `replies`, run it, and return
    its tool_result steps, one per call, in order (each checked against its tool_call)."""
    agent_id = create_agent(client, headers, tools, scripted(*replies, **config))
    steps = execute(client, headers, agent_id)["steps"]
    calls = [step for step in steps if step["type"] == "tool_call"]
    results = [step for step in steps if step["type"] == "tool_result"]
    expected = [call["name"] for reply in replies for call in reply["tool_calls"]]
    assert [step["tool"].replace(":", "_") for step in calls] == expected, steps
    assert [step["tool"] for step in results] == [step["tool"] for step in calls], steps
    return results


def result(step: dict[str, Any]) -> Any:
    """The result of a tool_result step that must have succeeded."""
    assert "error" not in step, step
    return step["result"]


def error(step: dict[str, Any]) -> str:
    """The error text (`CODE: message`) of a tool_result step that must have failed."""
    assert "result" not in step, step
    assert isinstance(step["error"], str), step
    return step["error"]
