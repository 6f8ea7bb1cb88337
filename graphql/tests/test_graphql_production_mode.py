"""Production mode (the default): introspection for signed-in callers only and no field
suggestions for anyone; development mode opens both."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from graphql import build_client_schema, get_introspection_query
from pasar_core.settings import Settings
from starlette.testclient import TestClient

from pasar.app import create_app

INTROSPECTIONS = [
    "{ __schema { types { name } } }",
    '{ __type(name: "Tool") { name fields { name } } }',
    "{ s: __schema { queryType { name } } }",
    "query { ...F } fragment F on Query { __schema { queryType { name } } }",
    "{ tools { id } __schema { queryType { name } } }",
    get_introspection_query(),  # what GraphiQL sends
]
# Each of these, in development mode, answers with a "Did you mean ...?".
TYPOS: list[tuple[str, dict[str, Any] | None]] = [
    ("{ toolz { id } }", None),
    ("{ tools { id efect } }", None),
    ('{ tools(famly: "x") { id } }', None),
    ("query ($x: Strin) { tools(family: $x) { id } }", None),
    ("{ tools { id ... on Agnt { id } } }", None),
    (
        "mutation ($i: CreateAgentInput!) { createAgent(input: $i) { agent { id } } }",
        {"i": {"name": "a", "tols": []}},
    ),
    (
        'mutation { createAgent(input: {name: "a", tols: []}) { agent { id } } }',
        None,
    ),
]


def codes(body: Mapping[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def post(client: TestClient, query: str, variables: Any = None, headers: Any = None) -> Any:
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def dev_client(pasar_settings: Settings) -> Iterator[TestClient]:
    settings = pasar_settings.with_overrides(dev_mode=True)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_production_is_the_default() -> None:
    assert Settings().dev_mode is False
    assert Settings.from_env({}).dev_mode is False


@pytest.mark.parametrize("query", INTROSPECTIONS)
def test_anonymous_introspection_is_refused(client: TestClient, query: str) -> None:
    for headers in ({}, {"Authorization": "Bearer forged"}, {"X-API-Key": "psr_nope"}):
        body = post(client, query, headers=headers)
        assert body["data"] is None
        assert codes(body) == ["UNAUTHENTICATED"]
        assert "introspection" in body["errors"][0]["message"]


def test_signed_in_callers_introspect(client: TestClient, make_user) -> None:
    headers = make_user()
    key = post(client, 'mutation { createApiKey(name: "ide") { key } }', headers=headers)
    for credentials in (headers, {"X-API-Key": key["data"]["createApiKey"]["key"]}):
        body = post(client, get_introspection_query(), headers=credentials)
        assert "errors" not in body
        schema = build_client_schema(body["data"])
        assert "tools" in schema.query_type.fields  # type: ignore[union-attr]


def test_what_is_not_introspection_stays_open(client: TestClient) -> None:
    assert post(client, "{ __typename }") == {"data": {"__typename": "Query"}}
    body = post(client, '{ tools(family: "__schema __type") { id } }')
    assert body == {"data": {"tools": []}}


def test_development_mode_opens_introspection(dev_client: TestClient) -> None:
    for query in INTROSPECTIONS:
        body = post(dev_client, query)
        assert "errors" not in body, body


@pytest.mark.parametrize(("query", "variables"), TYPOS)
def test_no_suggestions_in_production(
    client: TestClient, dev_client: TestClient, make_user, query: str, variables: Any
) -> None:
    dev = post(dev_client, query, variables)
    assert "Did you mean" in str(dev["errors"]), dev  # the typo does draw a suggestion
    headers: dict[str, str]
    for headers in ({}, make_user()):
        body = post(client, query, variables, headers=headers)
        assert body["errors"], body
        assert "Did you mean" not in str(body), body
        assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}


def test_introspection_over_websockets_needs_a_signed_in_caller(
    client: TestClient, make_user
) -> None:
    query = {"query": "{ __schema { queryType { name } } }"}
    for payload, expected in (
        ({}, None),
        (make_user(), {"__schema": {"queryType": {"name": "Query"}}}),
    ):
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init", "payload": payload})
            assert ws.receive_json()["type"] == "connection_ack"
            ws.send_json({"id": "1", "type": "subscribe", "payload": query})
            message = ws.receive_json()
        assert message["type"] == "next"
        assert message["payload"]["data"] == expected
        if expected is None:
            assert codes(message["payload"]) == ["UNAUTHENTICATED"]


def test_graphiql_is_served_in_production(client: TestClient) -> None:
    response = client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
