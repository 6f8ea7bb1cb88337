"""Tool calls whose effect needs approval pause the run until a person decides."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

WRITE = {"tool_calls": [{"name": "txt_write", "args": {"path": "approved.txt", "content": "yes"}}]}
READ = {"tool_calls": [{"name": "txt_read", "args": {"path": "approved.txt"}}]}


def agent(
    client: TestClient, headers: dict[str, str], *replies: dict[str, Any], require_for: list[str]
) -> str:
    config = {"model": "scripted", "model_options": {"script": list(replies)},
              "approval": {"require_for": require_for}}  # fmt: skip
    body = {"name": "careful", "tools": ["txt:write", "txt:read"], "config": config}
    response = client.post("/agents", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["agent_id"])


def run(client: TestClient, headers: dict[str, str], agent_id: str) -> dict[str, Any]:
    response = client.post(
        f"/agents/{agent_id}/execute", json={"input": "write it"}, headers=headers
    )
    return dict(response.json())


def test_approved_call_runs_and_the_run_continues(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = agent(
        client, headers, WRITE, READ, {"content": "written and checked"}, require_for=["write"]
    )
    paused = run(client, headers, agent_id)
    assert paused["status"] == "awaiting_approval"
    assert paused["pending_approval"]["tool"] == "txt:write"
    assert paused["pending_approval"]["args"] == {"path": "approved.txt", "content": "yes"}
    assert [step["type"] for step in paused["steps"]] == ["model_call"]  # nothing ran yet
    decided = client.post(f"/executions/{paused['execution_id']}/approval", json={"decision": "approve"},
                          headers=headers)  # fmt: skip
    assert decided.status_code == 200, decided.text
    done = decided.json()
    assert done["status"] == "succeeded", done
    assert done["output"] == {"message": "written and checked"}
    types = [step["type"] for step in done["steps"]]
    assert types == [
        "model_call",
        "tool_call",
        "tool_result",
        "model_call",
        "tool_call",
        "tool_result",
        "model_call",
    ]
    assert done["steps"][2]["result"]["bytes_written"] == 3
    assert done["steps"][5]["result"]["content"] == "yes"  # the read saw the approved write


def test_rejected_call_never_runs_and_the_model_is_told(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = agent(
        client, headers, WRITE, READ, {"content": "fine, not written"}, require_for=["write"]
    )
    paused = run(client, headers, agent_id)
    done = client.post(f"/executions/{paused['execution_id']}/approval",
                       json={"decision": "reject", "note": "not today"}, headers=headers).json()  # fmt: skip
    assert done["status"] == "succeeded"
    assert done["steps"][1]["error"].startswith("REJECTED")
    assert done["steps"][3]["tool"] == "txt:read"
    assert "error" in done["steps"][4]  # the file was never written


def test_reads_and_writes_run_without_approval_by_default(client: TestClient, make_user) -> None:
    headers = make_user()
    config = {"model": "scripted", "model_options": {"script": [WRITE, {"content": "ok"}]}}
    body = {"name": "default", "tools": ["txt:write"], "config": config}
    agent_id = client.post("/agents", json=body, headers=headers).json()["agent_id"]
    created = client.get(f"/agents/{agent_id}", headers=headers).json()
    assert created["config"]["approval"] == {"require_for": ["send", "destructive"]}
    assert run(client, headers, agent_id)["status"] == "succeeded"


def test_deciding_a_run_that_is_not_waiting_is_a_conflict(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = agent(client, headers, {"content": "no tools"}, require_for=["write"])
    finished = run(client, headers, agent_id)
    response = client.post(f"/executions/{finished['execution_id']}/approval", json={"decision": "approve"},
                           headers=headers)  # fmt: skip
    assert response.status_code == 409
    bad = client.post(f"/executions/{finished['execution_id']}/approval", json={"decision": "maybe"},
                      headers=headers)  # fmt: skip
    assert bad.status_code == 422


def test_graphql_decide_approval(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = agent(client, headers, WRITE, {"content": "done"}, require_for=["write"])
    paused = run(client, headers, agent_id)
    mutation = {"query": "mutation($id: ID!) { decideApproval(id: $id, decision: \"approve\") { status output } }",
                "variables": {"id": paused["execution_id"]}}  # fmt: skip
    result = client.post("/graphql", json=mutation, headers=headers).json()
    assert result["data"]["decideApproval"] == {
        "status": "succeeded",
        "output": {"message": "done"},
    }


def test_cancel_a_run_that_waits_for_approval(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = agent(client, headers, WRITE, {"content": "never"}, require_for=["write"])
    paused = run(client, headers, agent_id)
    assert paused["status"] == "awaiting_approval"
    cancelled = client.post(f"/executions/{paused['execution_id']}/cancel", headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["error"] == "cancelled on request"
    late = client.post(f"/executions/{paused['execution_id']}/approval",
                       json={"decision": "approve"}, headers=headers)  # fmt: skip
    assert late.status_code == 409  # nothing waits any more; the write never runs
    assert (
        client.get(f"/executions/{paused['execution_id']}", headers=headers).json()["steps"]
        == paused["steps"]
    )
