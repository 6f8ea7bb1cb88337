"""Teams through the API: members and roles managed by admins (never leaving no admin), API
keys that never exceed their creator, role changes that apply at once, other organisations'
ids that are simply not found, and hostile role values that are typed 4xx."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from tests.e2e.runs import scripted
from tests.support.teams import in_new_team, join

Headers = dict[str, str]


def sign_up(client: TestClient) -> tuple[str, Headers]:
    email = f"t-{uuid.uuid4().hex[:10]}@example.com"
    credentials = {"email": email, "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    return email, {"Authorization": f"Bearer {token}"}


def claims(headers: Headers) -> dict[str, Any]:
    token = headers["Authorization"].removeprefix("Bearer ")
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def switch(client: TestClient, headers: Headers, organisation: str) -> Headers:
    switched = client.post("/auth/switch", json={"organisation_id": organisation}, headers=headers)
    assert switched.status_code == 200, switched.text
    return {"Authorization": f"Bearer {switched.json()['access_token']}"}


def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


def team(client: TestClient, *roles: str) -> tuple[Headers, str, list[tuple[str, str, Headers]]]:
    """An admin's team organisation with a member of each role: (admin's headers acting in it,
    the organisation's id, [(user id, email, headers acting in it)])."""
    _, personal = sign_up(client)
    admin, organisation = in_new_team(client, personal)
    members = []
    for role in roles:
        email, own = sign_up(client)
        added = join(client, admin, own, email, role)
        members.append((added["user_id"], email, switch(client, own, organisation)))
    return admin, organisation, members


def gql(client: TestClient, headers: Headers, query: str, **variables: Any) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables},
                           headers=headers)  # fmt: skip
    payload: dict[str, Any] = response.json()
    return payload


def test_sign_up_makes_a_personal_organisation_where_the_user_is_admin(client: TestClient) -> None:
    _, headers = sign_up(client)
    listed = client.get("/organisations", headers=headers).json()
    [personal] = listed["organisations"]
    assert (personal["personal"], personal["role"]) == (True, "admin")
    assert listed["current"] == personal["id"] == claims(headers)["org"]
    me = gql(client, headers, "{ me { role organisationId operator } }")["data"]["me"]
    assert me == {"role": "admin", "organisationId": personal["id"], "operator": False}


def test_a_viewer_reads_but_neither_creates_nor_runs_nor_shares(client: TestClient) -> None:
    admin, _, [(_, _, viewer)] = team(client, "viewer")
    body = {"name": "a", "tools": [], "config": scripted()}
    shared = client.post("/agents", json=body, headers=admin).json()["agent_id"]
    assert client.put(f"/agents/{shared}/sharing", json={"role": "member"},
                      headers=admin).status_code == 200  # fmt: skip
    refused(client.post("/agents", json=body, headers=viewer), 403, "INSUFFICIENT_ROLE")
    read = client.get(f"/agents/{shared}", headers=viewer)
    assert (read.status_code, read.json()["shared_role"]) == (200, "member")
    run = client.post(f"/agents/{shared}/execute", json={"input": "hi"}, headers=viewer)
    refused(run, 403, "INSUFFICIENT_ROLE")
    refused(client.put(f"/agents/{shared}", json={"name": "x"}, headers=viewer), 403,
            "INSUFFICIENT_ROLE")  # fmt: skip
    mutation = 'mutation($id: ID!) { executeAgent(agentId: $id, input: "hi") { id } }'
    errors = gql(client, viewer, mutation, id=shared)["errors"]
    assert errors[0]["extensions"]["code"] == "INSUFFICIENT_ROLE"
    assert [a["id"] for a in client.get("/agents", headers=viewer).json()["agents"]] == [shared]


def test_a_member_runs_a_shared_agent_but_edits_only_at_the_shared_role(
    client: TestClient,
) -> None:
    admin, _, [(_, _, member)] = team(client, "member")
    body = {"name": "a", "tools": [], "config": scripted()}
    agent = client.post("/agents", json=body, headers=admin).json()["agent_id"]
    hidden = client.get(f"/agents/{agent}", headers=member)
    refused(hidden, 404, "NOT_FOUND")  # private: exactly like a missing one
    client.put(f"/agents/{agent}/sharing", json={"role": "member"}, headers=admin)
    run = client.post(f"/agents/{agent}/execute", json={"input": "hi"}, headers=member)
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "succeeded"
    refused(client.put(f"/agents/{agent}", json={"name": "x"}, headers=member), 403,
            "INSUFFICIENT_ROLE")  # fmt: skip
    refused(client.put(f"/agents/{agent}/sharing", json={"role": "admin"}, headers=member), 403,
            "INSUFFICIENT_ROLE")  # only the owner shares  # fmt: skip
    client.put(f"/agents/{agent}/sharing", json={"role": "admin"}, headers=admin)
    assert client.put(f"/agents/{agent}", json={"name": "x"}, headers=member).status_code == 403
    # The member's own runs are theirs: the owner does not read them.
    execution = run.json()["execution_id"]
    refused(client.get(f"/executions/{execution}", headers=admin), 404, "NOT_FOUND")


def test_api_keys_never_exceed_their_creator_and_follow_role_changes(client: TestClient) -> None:
    admin, _, [(member_id, _, member)] = team(client, "member")
    refused(client.post("/api-keys", json={"role": "admin"}, headers=member), 403,
            "ROLE_ESCALATION")  # fmt: skip
    errors = gql(client, member, 'mutation { createApiKey(role: "admin") { id } }')["errors"]
    assert errors[0]["extensions"]["code"] == "ROLE_ESCALATION"
    refused(client.post("/api-keys", json={"role": "owner"}, headers=member), 422,
            "VALIDATION_FAILED")  # fmt: skip
    created = client.post("/api-keys", json={"name": "ci"}, headers=member).json()
    assert (created["role"], created["organisation_id"]) == ("member", claims(member)["org"])
    key = {"X-API-Key": created["key"]}
    body = {"name": "k", "tools": [], "config": scripted()}
    assert client.post("/agents", json=body, headers=key).status_code == 201
    viewer_key = client.post("/api-keys", json={"role": "viewer"}, headers=key).json()
    refused(client.post("/agents", json=body, headers={"X-API-Key": viewer_key["key"]}), 403,
            "INSUFFICIENT_ROLE")  # fmt: skip
    refused(client.post("/api-keys", json={"role": "member"},
                        headers={"X-API-Key": viewer_key["key"]}), 403, "ROLE_ESCALATION")  # fmt: skip
    # Nor does a key open a session (a session would carry the creator's whole role).
    switch_body = {"organisation_id": claims(member)["org"]}
    refused(client.post("/auth/switch", json=switch_body, headers={"X-API-Key": viewer_key["key"]}),
            403, "ROLE_ESCALATION")  # fmt: skip
    # Demoted: the key acts as a viewer on its next use; removed: the key is refused.
    client.put(f"/members/{member_id}", json={"role": "viewer"}, headers=admin)
    refused(client.post("/agents", json=body, headers=key), 403, "INSUFFICIENT_ROLE")
    assert client.get("/agents", headers=key).status_code == 200
    assert client.delete(f"/members/{member_id}", headers=admin).status_code == 204
    refused(client.get("/agents", headers=key), 401, "UNAUTHENTICATED")


def test_only_admins_manage_members_and_the_last_admin_stays(client: TestClient) -> None:
    admin, organisation, [(member_id, _, member), (viewer_id, _, _)] = team(
        client, "member", "viewer"
    )
    admin_id = claims(admin)["sub"]
    # A member granting admin, to someone else or to themself: refused.
    refused(client.put(f"/members/{viewer_id}", json={"role": "admin"}, headers=member), 403,
            "INSUFFICIENT_ROLE")  # fmt: skip
    refused(client.put(f"/members/{member_id}", json={"role": "admin"}, headers=member), 403,
            "INSUFFICIENT_ROLE")  # fmt: skip
    refused(client.delete(f"/members/{viewer_id}", headers=member), 403, "INSUFFICIENT_ROLE")
    refused(client.put(f"/members/{admin_id}", json={"role": "member"}, headers=admin), 409,
            "LAST_ADMIN")  # fmt: skip
    refused(client.delete(f"/members/{admin_id}", headers=admin), 409, "LAST_ADMIN")
    errors = gql(client, admin, 'mutation($u: ID!) { setMemberRole(userId: $u, role: "viewer") '
                 "{ role } }", u=admin_id)["errors"]  # fmt: skip
    assert errors[0]["extensions"]["code"] == "LAST_ADMIN"
    promoted = gql(client, admin, 'mutation($u: ID!) { setMemberRole(userId: $u, role: "admin") '
                   "{ role } }", u=member_id)  # fmt: skip
    assert promoted == {"data": {"setMemberRole": {"role": "admin"}}}
    # Two admins now: the first may step down. The demotion ended the demoted admin's
    # sessions in the organisation; the promotion ended none (a refreshed token carries it).
    assert client.put(f"/members/{admin_id}", json={"role": "member"},
                      headers=admin).status_code == 200  # fmt: skip
    refused(client.get("/members", headers=admin), 401, "UNAUTHENTICATED")
    assert client.get("/members", headers=member).status_code == 200
    credentials = {"email": claims(admin)["email"], "password": TEST_PASSWORD}
    again = client.post("/auth/token", json=credentials).json()["access_token"]
    fresh = switch(client, {"Authorization": f"Bearer {again}"}, organisation)
    roles = {
        m["user_id"]: m["role"] for m in client.get("/members", headers=fresh).json()["members"]
    }
    assert roles == {admin_id: "member", member_id: "admin", viewer_id: "viewer"}
    refused(client.post("/invitations", json={"email": "x@example.com"}, headers=fresh), 403,
            "INSUFFICIENT_ROLE")  # fmt: skip


def test_another_organisations_ids_are_not_found_everywhere(client: TestClient) -> None:
    _, alice = sign_up(client)
    _, mallory = sign_up(client)
    body = {"name": "a", "tools": [], "config": scripted()}
    agent = client.post("/agents", json=body, headers=alice).json()["agent_id"]
    client.put(f"/agents/{agent}/sharing", json={"role": "admin"}, headers=alice)
    run = client.post(f"/agents/{agent}/execute", json={"input": "hi"}, headers=alice).json()
    alice_id = claims(alice)["sub"]
    for method, path, sent in (
        ("GET", f"/agents/{agent}", None), ("PUT", f"/agents/{agent}", {"name": "x"}),
        ("DELETE", f"/agents/{agent}", None),
        ("POST", f"/agents/{agent}/execute", {"input": "x"}),
        ("GET", f"/agents/{agent}/executions", None),
        ("GET", f"/executions/{run['execution_id']}", None),
        ("PUT", f"/members/{alice_id}", {"role": "viewer"}), ("DELETE", f"/members/{alice_id}", None),
    ):  # fmt: skip
        answer = client.request(method, path, json=sent, headers=mallory)
        error = refused(answer, 404, "NOT_FOUND")
        assert "hi" not in answer.text, error
    refused(client.post("/auth/switch", json={"organisation_id": claims(alice)["org"]},
                        headers=mallory), 404, "NOT_FOUND")  # fmt: skip
    query = "query($id: ID!) { agent(id: $id) { name } }"
    assert gql(client, mallory, query, id=agent)["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_a_credential_acts_in_one_organisation_only(client: TestClient) -> None:
    """Alice's own agent in her personal organisation is not found while she acts in a team."""
    _, alice = sign_up(client)
    body = {"name": "mine", "tools": [], "config": scripted()}
    mine = client.post("/agents", json=body, headers=alice).json()["agent_id"]
    created = client.post("/organisations", json={"name": "Acme"}, headers=alice)
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "admin"
    in_team = switch(client, alice, created.json()["id"])
    refused(client.get(f"/agents/{mine}", headers=in_team), 404, "NOT_FOUND")
    assert client.get("/agents", headers=in_team).json()["agents"] == []
    key = client.post("/api-keys", json={}, headers=in_team).json()
    assert key["organisation_id"] == created.json()["id"]
    refused(client.get(f"/agents/{mine}", headers={"X-API-Key": key["key"]}), 404, "NOT_FOUND")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(role=st.one_of(st.text(max_size=20), st.integers(), st.none(), st.lists(st.text())))
def test_hostile_roles_are_typed_refusals(client: TestClient, make_user: Any, role: Any) -> None:
    headers = make_user()
    member = {"email": "someone@example.com", "role": role}
    for method, path, body in (
        ("POST", "/invitations", member), ("PUT", f"/members/{uuid.uuid4()}", {"role": role}),
        ("POST", "/api-keys", {"role": role}),
    ):  # fmt: skip
        answer = client.request(method, path, json=body, headers=headers)
        assert answer.status_code in (201, 404, 409, 422), answer.text
        if role in ("admin", "member", "viewer") or (role is None and path == "/api-keys"):
            continue  # a role, or an API key's default (its creator's)
        refused(answer, 422, "VALIDATION_FAILED")


def test_members_of_a_shared_agent_never_receive_each_others_results_or_threads(
    client: TestClient,
) -> None:
    """The result cache and thread memory are the runner's own: another member sending the
    same input on the same thread id gets a fresh run that saw none of the owner's turns.
    A thread's runs are never answered from the cache (their answer depends on the thread's
    history), so the owner's repeat is a fresh run too, while a run without a thread is
    cached for its runner only."""
    admin, _, [(_, _, member)] = team(client, "member")
    config = scripted({"echo": True}) | {"memory": "thread", "cache_ttl_s": 3600}
    created = client.post("/agents", json={"name": "s", "tools": [], "config": config},
                          headers=admin)  # fmt: skip
    assert created.status_code == 201, created.text
    agent = created.json()["agent_id"]
    shared = client.put(f"/agents/{agent}/sharing", json={"role": "member"}, headers=admin)
    assert shared.status_code == 200, shared.text

    def run(headers: Headers, text: str) -> dict[str, Any]:
        body = {"input": text, "parameters": {"thread_id": "main"}}
        answer = client.post(f"/agents/{agent}/execute", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        assert result["status"] == "succeeded", result
        return result

    run(admin, "the owner's secret")
    again = run(admin, "the owner's secret")
    assert again["cached"] is False  # a thread's answer depends on its history
    assert "ai: human: the owner's secret" in again["output"]["message"]
    unthreaded = {"input": "no thread", "parameters": {}}
    client.post(f"/agents/{agent}/execute", json=unthreaded, headers=admin)
    cached = client.post(f"/agents/{agent}/execute", json=unthreaded, headers=admin).json()
    assert cached["cached"] is True  # the cache works for its runner
    not_theirs = client.post(f"/agents/{agent}/execute", json=unthreaded, headers=member).json()
    assert not_theirs["cached"] is False
    theirs = run(member, "the owner's secret")
    assert theirs["cached"] is False
    assert theirs["output"]["message"] == "human: the owner's secret"  # no earlier turn
    follow_up = run(member, "and now?")
    assert follow_up["output"]["message"] == "\n".join(  # their own earlier turn, only
        ["human: the owner's secret", "ai: human: the owner's secret", "human: and now?"]
    )
