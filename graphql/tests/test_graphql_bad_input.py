"""Bad input over GraphQL: every error carries `extensions.code`, and nothing in the database changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pasar_core.settings import Settings
from pasar_core.storage.db import async_url
from pasar_core.testing import TEST_PASSWORD
from pasar_graphql.schema import MAX_ALIASES, MAX_DEPTH
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

TABLES = ("users", "api_keys", "agents", "agent_tools")
CREATE = """
mutation ($input: CreateAgentInput!) {
  createAgent(input: $input) { agent { id name tools config } authRequired }
}"""
UPDATE = "mutation ($id: ID!, $input: UpdateAgentInput!) { updateAgent(id: $id, input: $input) { agent { id } } }"
GET = "query ($id: ID!) { agent(id: $id) { id name tools config } }"
DELETE = "mutation ($id: ID!) { deleteAgent(id: $id) }"
SIGN_UP = "mutation ($email: String!, $password: String!) { signUp(email: $email, password: $password) { id } }"

TEXT = st.text(max_size=30)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)
CONFIG_KEYS = [
    "model",
    "model_options",
    "fallbacks",
    "system_prompt",
    "memory",
    "strategy",
    "limits",
    "cache_ttl_s",
    "zzz",
]
CONFIGS = st.dictionaries(st.sampled_from(CONFIG_KEYS), JSON_VALUES, max_size=5) | JSON_VALUES


def codes(body: Mapping[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


@pytest.fixture
def snapshot(pasar_settings: Settings) -> Callable[[], dict[str, str]]:
    """snapshot() -> a digest of every account and agent row, to prove a request changed nothing."""

    async def digest() -> dict[str, str]:
        assert pasar_settings.database_url
        engine = create_async_engine(async_url(pasar_settings.database_url))
        try:
            async with engine.connect() as connection:
                return {
                    table: str(
                        await connection.scalar(
                            text(
                                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
                            )
                        )
                    )
                    for table in TABLES
                }
        finally:
            await engine.dispose()

    return lambda: asyncio.run(digest())


@pytest.fixture
def owner(gql, make_user) -> tuple[dict[str, str], dict[str, Any]]:
    """A user's headers and one agent of theirs."""
    headers = make_user()
    body = gql(CREATE, {"input": {"name": "kept", "tools": ["txt:read"]}}, headers=headers)
    return headers, body["data"]["createAgent"]["agent"]


def test_unknown_config_keys_fail_validation(gql, owner, snapshot) -> None:
    headers, agent = owner
    before = snapshot()
    body = gql(
        CREATE,
        {"input": {"name": "a", "config": {"modle": "scripted", "limits": {"steps": 1}}}},
        headers=headers,
    )
    assert body["data"] is None
    assert codes(body) == ["VALIDATION_FAILED"]
    problems = body["errors"][0]["extensions"]["errors"]
    assert {problem["path"] for problem in problems} == {"/config/modle", "/config/limits/steps"}
    body = gql(
        UPDATE, {"id": agent["id"], "input": {"config": {"memory": "forever"}}}, headers=headers
    )
    assert codes(body) == ["VALIDATION_FAILED"]
    assert body["errors"][0]["extensions"]["errors"][0]["path"] == "/config/memory"
    assert snapshot() == before


@pytest.mark.parametrize(
    "config",
    [[], "scripted", 3, {"model": "no provider"}, {"limits": {"max_steps": 0}}, {"fallbacks": "x"}],
)
def test_invalid_configs_fail_validation(gql, owner, snapshot, config: Any) -> None:
    headers, _ = owner
    before = snapshot()
    assert codes(gql(CREATE, {"input": {"name": "a", "config": config}}, headers=headers)) == [
        "VALIDATION_FAILED"
    ]
    assert snapshot() == before


@pytest.mark.parametrize(
    "agent_input",
    [
        {"name": "   "},
        {"name": "x" * 201},
        {"name": "a", "tools": ["txt:read", "txt:read"]},
        {"name": "a", "tools": [""]},
    ],
)
def test_invalid_names_and_tool_lists_fail_validation(
    gql, owner, snapshot, agent_input: dict[str, Any]
) -> None:
    headers, _ = owner
    before = snapshot()
    assert codes(gql(CREATE, {"input": agent_input}, headers=headers)) == ["VALIDATION_FAILED"]
    assert snapshot() == before


def test_unknown_tools_are_listed(gql, owner, snapshot) -> None:
    headers, agent = owner
    before = snapshot()
    body = gql(
        CREATE,
        {"input": {"name": "a", "tools": ["txt:read", "zz:top", "slack:send"]}},
        headers=headers,
    )
    assert codes(body) == ["UNKNOWN_TOOLS"]
    assert body["errors"][0]["extensions"]["unknown"] == ["slack:send", "zz:top"]
    assert "slack:send" in body["errors"][0]["message"]
    body = gql(
        UPDATE, {"id": agent["id"], "input": {"name": "new", "tools": ["no:pe"]}}, headers=headers
    )
    assert codes(body) == ["UNKNOWN_TOOLS"]
    assert gql(GET, {"id": agent["id"]}, headers=headers)["data"]["agent"] == agent
    assert snapshot() == before


@pytest.mark.parametrize(
    "bad_id", ["not-a-uuid", "", "1", "00000000-0000-0000-0000-000000000000", "x" * 500]
)
def test_bad_ids_are_not_found(gql, owner, snapshot, bad_id: str) -> None:
    headers, _ = owner
    before = snapshot()
    assert codes(gql(GET, {"id": bad_id}, headers=headers)) == ["NOT_FOUND"]
    assert codes(gql(UPDATE, {"id": bad_id, "input": {"name": "x"}}, headers=headers)) == [
        "NOT_FOUND"
    ]
    assert codes(gql(DELETE, {"id": bad_id}, headers=headers)) == ["NOT_FOUND"]
    assert snapshot() == before


def test_missing_or_bad_auth_is_unauthenticated(gql, owner, snapshot) -> None:
    _, agent = owner
    before = snapshot()
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"X-API-Key": "psr_nope"},
        {"Authorization": "Token x"},
    ):
        assert codes(gql(CREATE, {"input": {"name": "a"}}, headers=headers)) == ["UNAUTHENTICATED"]
        assert codes(gql(UPDATE, {"id": agent["id"], "input": {"name": "b"}}, headers=headers)) == [
            "UNAUTHENTICATED"
        ]
        assert codes(gql(DELETE, {"id": agent["id"]}, headers=headers)) == ["UNAUTHENTICATED"]
        assert codes(gql("{ agents { id } }", headers=headers)) == ["UNAUTHENTICATED"]
        assert codes(gql("mutation { createApiKey { key } }", headers=headers)) == [
            "UNAUTHENTICATED"
        ]
    assert snapshot() == before


def test_duplicate_email_is_a_conflict_and_changes_nothing(gql, snapshot) -> None:
    email = "dup@example.com"
    assert "errors" not in gql(SIGN_UP, {"email": email, "password": TEST_PASSWORD})
    before = snapshot()
    body = gql(SIGN_UP, {"email": " DUP@example.com ", "password": "another-password"})
    assert codes(body) == ["CONFLICT"]
    assert snapshot() == before
    log_in = (
        'mutation ($p: String!) { logIn(email: "dup@example.com", password: $p) { tokenType } }'
    )
    assert "errors" not in gql(log_in, {"p": TEST_PASSWORD})


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ('mutation { createAgent(input: {name: "a"}) { agent { id }', "GRAPHQL_PARSE_FAILED"),
        (
            'mutation { createAgent(input: {name: "a", nope: 1}) { agent { id } } }',
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "mutation { createAgent(input: {tools: []}) { agent { id } } }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "mutation { createAgent(input: {name: 3}) { agent { id } } }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
        ("mutation { createAgent { agent { id } } }", "GRAPHQL_VALIDATION_FAILED"),
        ("mutation { deleteAgent(id: [1]) }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ agents(first: 1.5) { id } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ agents { id nope } }", "GRAPHQL_VALIDATION_FAILED"),
        (
            "{ agents { toolDetails " + "{ x " * MAX_DEPTH + "}" * MAX_DEPTH + " } }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "{ " + " ".join(f"a{i}: agents {{ id }}" for i in range(MAX_ALIASES + 1)) + " }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
        ("{ " + "agents { id } " * 800 + "}", "GRAPHQL_PARSE_FAILED"),
    ],
)
def test_malformed_documents_carry_codes(
    client: TestClient, owner, snapshot, query: str, code: str
) -> None:
    headers, _ = owner
    before = snapshot()
    response = client.post("/graphql", json={"query": query}, headers=headers)
    body = response.json()
    assert body["data"] is None
    assert set(codes(body)) == {code}
    assert "Traceback" not in response.text
    assert snapshot() == before


def test_bad_variables_carry_codes(gql, owner, snapshot) -> None:
    headers, _ = owner
    before = snapshot()
    for variables in (
        {},
        {"input": None},
        {"input": {"name": ["x"]}},
        {"input": {"name": "a", "tools": [["txt:read"]]}},
        {"input": {"name": "a", "extra": 1}},
    ):
        assert codes(gql(CREATE, variables, headers=headers)) == ["GRAPHQL_VALIDATION_FAILED"], (
            variables
        )
    assert snapshot() == before


def test_non_graphql_bodies_are_rejected_without_a_crash(client: TestClient) -> None:
    for content in (b"{", b"[]", b'{"query": 3}', b'{"variables": {}}'):
        response = client.post(
            "/graphql", content=content, headers={"Content-Type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (content, response.status_code)
        assert "Traceback" not in response.text


@settings(
    max_examples=75, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(config=CONFIGS, name=TEXT | st.just("fuzzed"))
def test_random_configs_never_crash(client: TestClient, owner, config: Any, name: str) -> None:
    headers, _ = owner
    response = client.post(
        "/graphql",
        json={"query": CREATE, "variables": {"input": {"name": name, "config": config}}},
        headers=headers,
    )
    assert response.status_code == 200
    body = response.json()
    if body.get("errors"):
        assert body["data"] is None
        assert codes(body), json.dumps(body)[:500]
        assert "INTERNAL" not in codes(body), json.dumps(body)[:500]
    else:
        agent = body["data"]["createAgent"]["agent"]
        assert agent["name"] == name.strip()
        assert isinstance(agent["config"], dict)


@pytest.mark.parametrize(
    "agent_input",
    [
        {"name": "a\x00b"},
        {"name": "a", "config": {"system_prompt": "\x00"}},
        {"name": "a", "config": {"model_options": {"k": "\x00"}}},
        {"name": "a", "config": {"model_options": {"k\x00": 1}}},
        {"name": "a", "tools": ["txt:read\x00"]},
    ],
)
def test_nul_characters_are_refused(gql, owner, agent_input: dict[str, Any]) -> None:
    headers, _ = owner
    assert codes(gql(CREATE, {"input": agent_input}, headers=headers)) == ["VALIDATION_FAILED"]
