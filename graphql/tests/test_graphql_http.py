"""End to end through the app: accounts, tools and agents over POST /graphql."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

AGENT_FIELDS = "id name tools config createdAt updatedAt toolDetails { id family title }"
CREATE = f"""
mutation ($input: CreateAgentInput!) {{
  createAgent(input: $input) {{ agent {{ {AGENT_FIELDS} }} authRequired authUrl missingScopes }}
}}"""
UPDATE = f"""
mutation ($id: ID!, $input: UpdateAgentInput!) {{
  updateAgent(id: $id, input: $input) {{ agent {{ {AGENT_FIELDS} }} authRequired }}
}}"""
GET = f"query ($id: ID!) {{ agent(id: $id) {{ {AGENT_FIELDS} }} }}"
LIST = "query ($first: Int! = 50, $offset: Int! = 0) { agents(first: $first, offset: $offset) { id name } }"
DELETE = "mutation ($id: ID!) { deleteAgent(id: $id) }"
SIGN_UP = "mutation ($email: String!, $password: String!) { signUp(email: $email, password: $password) { id email role createdAt } }"
LOG_IN = "mutation ($email: String!, $password: String!) { logIn(email: $email, password: $password) { accessToken tokenType expiresIn } }"


def codes(body: Mapping[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def new_email() -> str:
    return f"gql-{uuid.uuid4().hex[:10]}@example.com"


def test_sign_up_log_in_and_me(gql) -> None:
    email = new_email()
    signed_up = gql(SIGN_UP, {"email": email.upper(), "password": TEST_PASSWORD})
    assert "errors" not in signed_up
    user = signed_up["data"]["signUp"]
    assert user["email"] == email
    assert user["role"] == "admin"  # of their personal organisation
    uuid.UUID(user["id"])

    logged_in = gql(LOG_IN, {"email": email, "password": TEST_PASSWORD})["data"]["logIn"]
    assert logged_in["tokenType"] == "bearer"
    assert logged_in["expiresIn"] > 0
    headers = {"Authorization": f"Bearer {logged_in['accessToken']}"}
    me = gql("{ me { id email role authenticatedVia } }", headers=headers)["data"]["me"]
    assert me == {"id": user["id"], "email": email, "role": "admin", "authenticatedVia": "token"}


def test_duplicate_email_is_a_conflict(gql) -> None:
    email = new_email()
    assert "errors" not in gql(SIGN_UP, {"email": email, "password": TEST_PASSWORD})
    body = gql(SIGN_UP, {"email": email, "password": TEST_PASSWORD + "x"})
    assert body["data"] is None
    assert codes(body) == ["CONFLICT"]


def test_wrong_password_is_unauthenticated(gql) -> None:
    email = new_email()
    gql(SIGN_UP, {"email": email, "password": TEST_PASSWORD})
    body = gql(LOG_IN, {"email": email, "password": "wrong-password"})
    assert codes(body) == ["UNAUTHENTICATED"]
    assert codes(gql(LOG_IN, {"email": new_email(), "password": TEST_PASSWORD})) == [
        "UNAUTHENTICATED"
    ]


def test_api_key_is_shown_once_and_authenticates(gql, make_user) -> None:
    headers = make_user()
    body = gql(
        'mutation { createApiKey(name: "ci") { id name prefix key createdAt } }', headers=headers
    )
    key = body["data"]["createApiKey"]
    assert key["name"] == "ci"
    assert key["key"].startswith(key["prefix"])
    for via_key in ({"Authorization": f"Bearer {key['key']}"}, {"X-API-Key": key["key"]}):
        me = gql("{ me { authenticatedVia } }", headers=via_key)
        assert me["data"]["me"]["authenticatedVia"] == "api_key"
    default = gql("mutation { createApiKey { name } }", headers=headers)["data"]["createApiKey"]
    assert default["name"] == "default"
    assert codes(gql('mutation { createApiKey(name: "") { id } }', headers=headers)) == [
        "VALIDATION_FAILED"
    ]
    assert codes(gql("mutation { createApiKey { id } }")) == ["UNAUTHENTICATED"]
    assert codes(gql("{ me { id } }", headers={"X-API-Key": key["key"] + "x"})) == [
        "UNAUTHENTICATED"
    ]


def test_tools_are_public(gql) -> None:
    body = gql('{ tools { id family } tool(id: "txt:read") { id effect inputSchema } }')
    assert "errors" not in body
    assert "txt:read" in {tool["id"] for tool in body["data"]["tools"]}
    assert body["data"]["tool"]["inputSchema"]["type"] == "object"


def test_agent_lifecycle(gql, make_user) -> None:
    headers = make_user()
    created = gql(
        CREATE,
        {
            "input": {
                "name": "  Reader  ",
                "tools": ["txt:read", "csv:read"],
                "config": {
                    "model": "scripted",
                    "model_options": {"script": [{"content": "hi"}]},
                    "limits": {"max_steps": 3},
                },
            }
        },
        headers=headers,
    )
    assert "errors" not in created, created
    saved = created["data"]["createAgent"]
    assert saved["authRequired"] is False
    assert saved["authUrl"] is None
    assert saved["missingScopes"] == {}
    agent = saved["agent"]
    assert agent["name"] == "Reader"
    assert agent["tools"] == ["txt:read", "csv:read"]
    assert [tool["id"] for tool in agent["toolDetails"]] == ["txt:read", "csv:read"]
    assert agent["config"]["model"] == "scripted"
    assert agent["config"]["limits"]["max_steps"] == 3
    assert agent["config"]["memory"] == "none"  # defaults filled in by the core

    assert gql(GET, {"id": agent["id"]}, headers=headers)["data"]["agent"] == agent
    listed = gql(LIST, headers=headers)["data"]["agents"]
    assert listed == [{"id": agent["id"], "name": "Reader"}]

    renamed = gql(UPDATE, {"id": agent["id"], "input": {"name": "Renamed"}}, headers=headers)
    updated = renamed["data"]["updateAgent"]["agent"]
    assert updated["name"] == "Renamed"
    assert updated["tools"] == agent["tools"]
    assert updated["config"] == agent["config"]
    assert updated["updatedAt"] > agent["updatedAt"]

    retooled = gql(
        UPDATE,
        {"id": agent["id"], "input": {"tools": ["txt:write"], "config": {"memory": "thread"}}},
        headers=headers,
    )["data"]["updateAgent"]["agent"]
    assert retooled["tools"] == ["txt:write"]
    assert retooled["config"]["memory"] == "thread"
    assert retooled["config"]["model"] == "openai:gpt-4o-mini"  # config is replaced, not merged

    assert gql(DELETE, {"id": agent["id"]}, headers=headers) == {"data": {"deleteAgent": True}}
    assert codes(gql(GET, {"id": agent["id"]}, headers=headers)) == ["NOT_FOUND"]
    assert codes(gql(DELETE, {"id": agent["id"]}, headers=headers)) == ["NOT_FOUND"]
    assert gql(LIST, headers=headers)["data"]["agents"] == []


def test_paging(gql, make_user) -> None:
    headers = make_user()
    for index in range(3):
        gql(CREATE, {"input": {"name": f"agent {index}"}}, headers=headers)
    names = [
        a["name"] for a in gql(LIST, {"first": 2, "offset": 1}, headers=headers)["data"]["agents"]
    ]
    assert names == ["agent 1", "agent 2"]


def test_other_users_agents_are_invisible(gql, make_user) -> None:
    alice, bob = make_user(), make_user()
    agent = gql(CREATE, {"input": {"name": "private"}}, headers=alice)["data"]["createAgent"][
        "agent"
    ]
    unknown_id = str(uuid.uuid4())
    for agent_id in (agent["id"], unknown_id):
        got = gql(GET, {"id": agent_id}, headers=bob)
        assert got["data"] == {"agent": None}
        assert codes(got) == ["NOT_FOUND"]
        assert got["errors"][0]["message"] == f"no agent with id {agent_id!r}"
        assert codes(gql(UPDATE, {"id": agent_id, "input": {"name": "x"}}, headers=bob)) == [
            "NOT_FOUND"
        ]
        assert codes(gql(DELETE, {"id": agent_id}, headers=bob)) == ["NOT_FOUND"]
    assert gql(LIST, headers=bob)["data"]["agents"] == []
    assert gql(GET, {"id": agent["id"]}, headers=alice)["data"]["agent"]["name"] == "private"


def test_graphiql_is_served_to_browsers(client: TestClient) -> None:
    response = client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


def test_queries_work_over_get(client: TestClient) -> None:
    response = client.get("/graphql", params={"query": '{ tool(id: "txt:read") { id } }'})
    assert response.json() == {"data": {"tool": {"id": "txt:read"}}}


def test_sibling_fields_share_one_authentication(gql, make_user) -> None:
    headers = make_user()
    key = gql("mutation { createApiKey { key } }", headers=headers)["data"]["createApiKey"]["key"]
    gql(CREATE, {"input": {"name": "one"}}, headers=headers)
    aliases = " ".join(f"m{i}: me {{ id }}" for i in range(5))
    body = gql("{ " + aliases + " agents { name } tools { id } }", headers={"X-API-Key": key})
    assert "errors" not in body
    assert len({body["data"][f"m{i}"]["id"] for i in range(5)}) == 1
    assert body["data"]["agents"] == [{"name": "one"}]


def test_refresh_token_mutation_rotates(gql) -> None:
    email = new_email()
    gql(SIGN_UP, {"email": email, "password": TEST_PASSWORD})
    log_in = (
        "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { refreshToken } }"
    )
    first = gql(log_in, {"e": email, "p": TEST_PASSWORD})["data"]["logIn"]
    refresh = (
        "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }"
    )
    second = gql(refresh, {"t": first["refreshToken"]})["data"]["refreshToken"]
    assert second["refreshToken"] != first["refreshToken"]
    again = gql(refresh, {"t": first["refreshToken"]})
    assert again["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
