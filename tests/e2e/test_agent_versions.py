"""Agent config versions through REST and GraphQL: every create and update is a version, a run
records the version it ran, two versions diff into paths, a rollback is a new version, and
another user's agent's versions are NOT_FOUND."""

from __future__ import annotations

import uuid
from typing import Any

from pasar_core.executions import store
from pasar_core.services import Services
from starlette.testclient import TestClient

from tests.e2e.authz_world import tool_body


def _scripted(prompt: str) -> dict[str, Any]:
    return {"model": "scripted", "model_options": {"script": [{"echo": True}]},
            "system_prompt": prompt, "limits": {"max_steps": 5}}  # fmt: skip


def _agent(client: TestClient, headers: dict[str, str]) -> str:
    body = {"name": "v", "tools": ["txt:read"], "config": _scripted("first")}
    created = client.post("/agents", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["agent"]["version"] == 1
    return str(created.json()["agent_id"])


def test_versions_diff_rollback_and_the_version_a_run_ran(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = _agent(client, headers)
    first_run = client.post(f"/agents/{agent_id}/execute", json={"input": "hi"}, headers=headers)
    assert first_run.json()["agent_version"] == 1
    changed = {"name": "v2", "tools": ["txt:read", "csv:read"], "config": _scripted("second")}
    updated = client.put(f"/agents/{agent_id}", json=changed, headers=headers)
    assert updated.json()["agent"]["version"] == 2
    second_run = client.post(f"/agents/{agent_id}/execute", json={"input": "hi"}, headers=headers)
    assert second_run.json()["agent_version"] == 2
    assert "system: second" in second_run.json()["output"]["message"]

    listed = client.get(f"/agents/{agent_id}/versions", headers=headers).json()["versions"]
    assert [v["version"] for v in listed] == [2, 1]
    me = client.post("/graphql", json={"query": "{ me { id } }"}, headers=headers).json()
    user_id = me["data"]["me"]["id"]
    assert {v["author_id"] for v in listed} == {user_id}
    one = client.get(f"/agents/{agent_id}/versions/1", headers=headers).json()
    assert one["name"] == "v"
    assert one["tools"] == ["txt:read"]
    assert one["config"]["system_prompt"] == "first"

    changes = client.get(f"/agents/{agent_id}/versions/1/diff/2", headers=headers).json()
    assert {(c["path"], c["kind"]) for c in changes["changes"]} == {
        ("name", "changed"), ("tools", "changed"), ("config.system_prompt", "changed"),
    }  # fmt: skip
    prompt = next(c for c in changes["changes"] if c["path"] == "config.system_prompt")
    assert (prompt["old"], prompt["new"]) == ("first", "second")
    same = client.get(f"/agents/{agent_id}/versions/2/diff/2", headers=headers).json()
    assert same["changes"] == []

    rolled = client.post(f"/agents/{agent_id}/versions/1/rollback", headers=headers)
    assert rolled.status_code == 200, rolled.text
    agent = rolled.json()["agent"]
    assert (agent["version"], agent["name"], agent["tools"]) == (3, "v", ["txt:read"])
    third = client.get(f"/agents/{agent_id}/versions/3", headers=headers).json()
    assert third["rolled_back_from"] == 1
    back = client.get(f"/agents/{agent_id}/versions/1/diff/3", headers=headers).json()
    assert back["changes"] == []
    third_run = client.post(f"/agents/{agent_id}/execute", json={"input": "hi"}, headers=headers)
    assert third_run.json()["agent_version"] == 3
    assert "system: first" in third_run.json()["output"]["message"]

    # A run is read back with the version it was made with, not the agent's newest.
    services: Services = client.app_state["services"]
    assert client.portal is not None
    record = client.portal.call(
        store.load, services.sessionmaker.kw["bind"], uuid.UUID(second_run.json()["execution_id"])
    )
    assert record is not None
    assert record.agent_version == 2
    assert record.agent_config["system_prompt"] == "second"
    assert record.agent_tool_ids == ["txt:read", "csv:read"]


def test_bad_versions_and_other_users_agents_are_not_found(client: TestClient, make_user) -> None:
    owner, stranger = make_user(), make_user()
    agent_id = _agent(client, owner)
    for path in ("versions/9", "versions/0", "versions/x", "versions/1/diff/9",
                 "versions/-1", "versions/99999999999999999999", "versions/²"):  # fmt: skip
        missing = client.get(f"/agents/{agent_id}/{path}", headers=owner)
        assert missing.status_code == 404, (path, missing.text)
        assert missing.json()["error"]["code"] == "NOT_FOUND"
    assert client.post(f"/agents/{agent_id}/versions/7/rollback", headers=owner).status_code == 404
    for method, path in (("GET", "versions"), ("GET", "versions/1"),
                         ("GET", "versions/1/diff/1"), ("POST", "versions/1/rollback")):  # fmt: skip
        hidden = client.request(method, f"/agents/{agent_id}/{path}", headers=stranger)
        assert hidden.status_code == 404, hidden.text
        assert hidden.json()["error"]["code"] == "NOT_FOUND"
    # nothing changed: still one version
    listed = client.get(f"/agents/{agent_id}/versions", headers=owner).json()["versions"]
    assert [v["version"] for v in listed] == [1]


def test_a_rollback_to_a_tool_since_gone_is_refused_and_changes_nothing(
    client: TestClient, make_user
) -> None:
    headers = make_user()
    tool_id = f"v{uuid.uuid4().hex[:10]}:total"
    registered = client.post("/tools", json=tool_body(tool_id), headers=headers)
    assert registered.status_code in (200, 201), registered.text
    created = client.post(
        "/agents", json={"name": "c", "tools": [tool_id], "config": _scripted("x")},
        headers=headers,
    )  # fmt: skip
    agent_id = created.json()["agent_id"]
    client.put(f"/agents/{agent_id}", json={"tools": []}, headers=headers)
    assert client.delete(f"/tools/{tool_id}", headers=headers).status_code == 204
    refused = client.post(f"/agents/{agent_id}/versions/1/rollback", headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "UNKNOWN_TOOLS"
    versions = client.get(f"/agents/{agent_id}/versions", headers=headers).json()["versions"]
    assert [v["version"] for v in versions] == [2, 1]


def test_versions_through_graphql(client: TestClient, make_user) -> None:
    headers, stranger = make_user(), make_user()
    agent_id = _agent(client, headers)
    client.put(f"/agents/{agent_id}", json={"config": _scripted("second")}, headers=headers)

    def gql(document: str, who: dict[str, str] = headers) -> Any:
        return client.post("/graphql", json={"query": document}, headers=who).json()

    listed = gql(f'{{ agentVersions(agentId: "{agent_id}") {{ version config }} }}')
    assert [v["version"] for v in listed["data"]["agentVersions"]] == [2, 1]
    diff = gql(f'{{ agentVersionDiff(agentId: "{agent_id}", fromVersion: 2, toVersion: 1)'
               " { changes { path kind old new } } }")  # fmt: skip
    assert diff["data"]["agentVersionDiff"]["changes"] == [
        {"path": "config.system_prompt", "kind": "changed", "old": "second", "new": "first"}
    ]
    rolled = gql(f'mutation {{ rollbackAgent(agentId: "{agent_id}", version: 1)'
                 " { agent { version config } } }")  # fmt: skip
    assert rolled["data"]["rollbackAgent"]["agent"]["version"] == 3
    assert rolled["data"]["rollbackAgent"]["agent"]["config"]["system_prompt"] == "first"
    hidden = gql(f'{{ agentVersion(agentId: "{agent_id}", version: 1) {{ version }} }}', stranger)
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
