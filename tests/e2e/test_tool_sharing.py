"""Custom tools shared with an organisation, through both surfaces: members' agents use a tool
shared with `member`, a viewer only sees it, only its owner changes it, an organisation admin
takes it back, and an agent naming a tool taken back is refused with typed errors at save and
at run (never a 500), while the owner keeps the tool in every organisation.

HTTP custom tools against a local test server (no Docker); `outbound` blocks anything that is
not loopback.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from tests.e2e import test_custom_tools_http
from tests.e2e.runs import call, create_agent, result, scripted
from tests.e2e.test_custom_tools_http import SECRET, Api, http_tool, register, tool_results
from tests.e2e.test_runs_web import Outbound
from tests.e2e.test_teams import refused, team

api = test_custom_tools_http.api
outbound = test_custom_tools_http.outbound

Headers = dict[str, str]


def _tool_id() -> str:
    return f"s{uuid.uuid4().hex[:10]}:rate"


def _share(client: TestClient, headers: Headers, tool_id: str, role: str | None) -> Any:
    return client.put(f"/tools/{tool_id}/sharing", json={"role": role}, headers=headers)


def _listed(client: TestClient, headers: Headers) -> set[str]:
    response = client.get("/tools", headers=headers)
    assert response.status_code == 200, response.text
    return {tool["id"] for tool in response.json()["tools"]}


def _run(client: TestClient, headers: Headers, agent_id: str) -> Any:
    return client.post(
        f"/agents/{agent_id}/execute",
        json={"input": "go", "parameters": {"wait": True, "timeout_s": 60}},
        headers=headers,
    )


def test_a_shared_tool_is_used_by_members_seen_by_viewers_and_taken_back_by_an_admin(
    client: TestClient, api: Api, outbound: Outbound
) -> None:
    admin, organisation, people = team(client, "member", "member", "viewer")
    (_, _, owner), (_, _, member), (_, _, viewer) = people
    tool_id = _tool_id()
    register(client, owner, http_tool(
        tool_id, f"{api.base}/rates/{{currency}}", allow=["127.0.0.1"],
        headers={"Authorization": "Bearer {secrets.rates_key}"},
    ))  # fmt: skip
    private = client.get(f"/tools/{tool_id}", headers=member)
    refused(private, 404, "TOOL_NOT_FOUND")
    refused(client.post("/agents", json={"name": "x", "tools": [tool_id],
                                         "config": scripted()}, headers=member),
            422, "UNKNOWN_TOOLS")  # fmt: skip

    shared = _share(client, owner, tool_id, "member")
    assert shared.status_code == 200, shared.text
    assert shared.json()["shared_role"] == "member"
    assert shared.json()["shared_organisation_id"] == organisation

    # a member sees it, and their agents use it
    assert tool_id in _listed(client, member)
    detail = client.get(f"/tools/{tool_id}", headers=member)
    assert detail.status_code == 200, detail.text
    assert detail.json()["implementation"]["kind"] == "http"
    agent = create_agent(client, member, [tool_id],
                         scripted(call(tool_id, currency="USD", day="d")))  # fmt: skip
    # the shared tool's secret is the member's agent's own
    stored = client.put(f"/agents/{agent}/secrets/rates_key", json={"value": SECRET},
                        headers=member)  # fmt: skip
    assert stored.status_code in (200, 204), stored.text
    run = _run(client, member, agent)
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "succeeded", run.json()
    [step] = tool_results(run.json())
    assert result(step) == {"currency": "USD", "rate": 1.25, "day": "d"}
    assert [seen["path"] for seen in api.seen] == ["/rates/USD"]

    # a viewer reads it but uses nothing (their role caps them), and is not offered it
    assert client.get(f"/tools/{tool_id}", headers=viewer).status_code == 200
    assert tool_id not in _listed(client, viewer)

    # only the owner changes, deletes or re-shares it
    body = http_tool(tool_id, f"{api.base}/broken", allow=["127.0.0.1"])
    refused(client.put(f"/tools/{tool_id}", json=body, headers=member), 403, "INSUFFICIENT_ROLE")
    refused(client.delete(f"/tools/{tool_id}", headers=member), 403, "INSUFFICIENT_ROLE")
    refused(_share(client, member, tool_id, "admin"), 403, "INSUFFICIENT_ROLE")
    refused(client.delete(f"/tools/{tool_id}/sharing", headers=member), 403, "INSUFFICIENT_ROLE")
    refused(client.delete(f"/tools/{tool_id}/sharing", headers=viewer), 403, "INSUFFICIENT_ROLE")
    # the member's agent holds it: the owner cannot delete it from under them
    in_use = refused(client.delete(f"/tools/{tool_id}", headers=owner), 409, "TOOL_IN_USE")
    assert in_use["details"]["agents"] == []  # the member's agent id is not the owner's to see
    assert in_use["details"]["other_agents"] == 1

    # an admin of the organisation takes it back
    taken = client.delete(f"/tools/{tool_id}/sharing", headers=admin)
    assert taken.status_code == 204, taken.text
    refused(client.get(f"/tools/{tool_id}", headers=member), 404, "TOOL_NOT_FOUND")
    assert tool_id not in _listed(client, member)
    # the member's agent: refused at save with a typed error, and its run fails typed
    refused(client.put(f"/agents/{agent}", json={"tools": [tool_id]}, headers=member),
            422, "UNKNOWN_TOOLS")  # fmt: skip
    after = _run(client, member, agent)
    assert after.status_code < 500, after.text
    text = after.text
    assert "TOOL_NOT_FOUND" in text, text
    assert [seen["path"] for seen in api.seen] == ["/rates/USD"]  # it never ran again

    # the owner still has it, privately
    own = client.get(f"/tools/{tool_id}", headers=owner)
    assert own.status_code == 200, own.text
    assert own.json()["shared_role"] is None

    rows = client.get("/audit?action=tool.&target_id=" + tool_id, headers=admin)
    assert rows.status_code == 200, rows.text
    actions = [row["action"] for row in rows.json()["rows"]]
    assert actions[:2] == ["tool.unshared", "tool.shared"], actions


def test_sharing_with_viewer_lets_members_read_but_not_use(
    client: TestClient, make_user: Callable[..., Headers]
) -> None:
    _, _, people = team(client, "member", "admin")
    (_, _, owner), (_, _, admin) = people
    tool_id = _tool_id()
    register(client, owner, http_tool(tool_id, "http://api.example.com/{currency}", allow=[]))
    assert _share(client, owner, tool_id, "viewer").status_code == 200
    for reader in (admin,):
        assert client.get(f"/tools/{tool_id}", headers=reader).status_code == 200
        refused(client.post("/agents", json={"name": "x", "tools": [tool_id],
                                             "config": scripted()}, headers=reader),
                422, "UNKNOWN_TOOLS")  # fmt: skip
    # shared with `member`, an admin acts as a member: usable
    assert _share(client, owner, tool_id, "member").status_code == 200
    made = client.post("/agents", json={"name": "x", "tools": [tool_id], "config": scripted()},
                       headers=admin)  # fmt: skip
    assert made.status_code == 201, made.text
    # another organisation never sees it, not even by id
    stranger = make_user()
    refused(client.get(f"/tools/{tool_id}", headers=stranger), 404, "TOOL_NOT_FOUND")
    refused(client.delete(f"/tools/{tool_id}/sharing", headers=stranger), 404, "TOOL_NOT_FOUND")
    refused(_share(client, owner, f"{tool_id}@1", "member"), 422, "TOOL_DEFINITION_INVALID")
    refused(_share(client, owner, tool_id, "owner"), 422, "VALIDATION_FAILED")


def test_graphql_shares_and_unshares_a_tool(client: TestClient) -> None:
    _, organisation, people = team(client, "member", "member")
    (_, _, owner), (_, _, member) = people
    tool_id = _tool_id()
    register(client, owner, http_tool(tool_id, "http://api.example.com/{currency}", allow=[]))

    def graphql(headers: Headers, query: str) -> dict[str, Any]:
        response = client.post(
            "/graphql", json={"query": query, "variables": {"id": tool_id}}, headers=headers
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    shared = graphql(owner, 'mutation($id: String!) { shareTool(id: $id, role: "member") '
                            "{ id sharedRole sharedOrganisationId } }")  # fmt: skip
    assert shared["data"]["shareTool"] == {
        "id": tool_id, "sharedRole": "member", "sharedOrganisationId": organisation
    }  # fmt: skip
    seen = graphql(member, "query($id: String!) { tool(id: $id) { id sharedRole } }")
    assert seen["data"]["tool"] == {"id": tool_id, "sharedRole": "member"}
    denied = graphql(member, "mutation($id: String!) { unshareTool(id: $id) }")
    assert denied["errors"][0]["extensions"]["code"] == "INSUFFICIENT_ROLE", denied
    assert graphql(owner, "mutation($id: String!) { unshareTool(id: $id) }")["data"] == {
        "unshareTool": True
    }
    assert graphql(member, "query($id: String!) { tool(id: $id) { id } }")["data"] == {"tool": None}


def test_files_of_a_shared_agent_are_its_runner_s(client: TestClient) -> None:
    """Files are per user: a member's run of a shared agent writes into the runner's own space
    (exported and erased with the runner), never the owner's, and no other member sees it."""
    _, _, people = team(client, "member", "member")
    (_, _, owner), (_, _, runner) = people
    agent = create_agent(client, owner, ["txt:write"],
                         scripted(call("txt:write", path="shared/out.txt", content="runner")))  # fmt: skip
    shared = client.put(f"/agents/{agent}/sharing", json={"role": "member"}, headers=owner)
    assert shared.status_code == 200, shared.text
    run = _run(client, runner, agent)
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "succeeded", run.json()

    def paths(headers: Headers) -> set[str]:
        response = client.get("/files?prefix=shared/", headers=headers)
        assert response.status_code == 200, response.text
        return {entry["path"] for entry in response.json()["files"]}

    assert paths(runner) == {"shared/out.txt"}
    assert paths(owner) == set()
    assert client.get("/files/shared/out.txt", headers=owner).status_code == 404
    assert client.get("/files/shared/out.txt", headers=runner).content == b"runner"

    def exported_files(headers: Headers) -> str:
        response = client.get("/me/export", headers=headers)
        assert response.status_code == 200, response.text
        return str(response.json()["files"])

    assert "shared/out.txt" in exported_files(runner)
    assert "shared/out.txt" not in exported_files(owner)  # (its script names the path)
