"""Malformed requests to /graphql: POST bodies, GET parameters, websocket messages and hostile
documents. Each gets a typed GraphQL error (or a 4400 close), never a 5xx, at most one log line."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.support.hostile_json import HOSTILE_BODIES, HostileBody

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# What survives a URL's query string as text (bytes and content types do not apply there).
TEXT_KINDS = HOSTILE_BODIES.filter(
    lambda body: (
        body.kind not in {"invalid utf-8", "garbage", "wrong content type"}
        and len(body.content) < 15_000
    )  # URLs are short: a client refuses longer ones
)


def assert_request_error(response: Any, status: int = 400, code: str = "BAD_REQUEST") -> None:
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert "data" not in body
    assert [error["extensions"]["code"] for error in body["errors"]] == [code], body


def assert_quiet(caplog: pytest.LogCaptureFixture) -> None:
    assert len(caplog.records) <= 1, [record.getMessage() for record in caplog.records]
    assert not any(record.exc_info for record in caplog.records)


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe",
        b'{"query": "{ tools { id } }", "x": "\xc3("}',
        b'"{ tools { id } }"',
        b"null",
        b"3",
        b'{"query": "{ tools { id } }", "variables": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        b'{"query": "{ tools { id } }", "variables": {"a": NaN}}',
        b'{"query": "{ tools { id } }", "query": "{ agents { id } }"}',
        b'{"query": "{ tools { id } }", "operationName": 3}',
        b'{"query": 3}',
        b"[]",
    ],
)
def test_the_reported_bodies_are_typed_400s(
    client: TestClient, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    caplog.set_level(logging.INFO)
    response = client.post(
        "/graphql", content=content, headers={"Content-Type": "application/json"}
    )
    assert_request_error(response)
    assert_quiet(caplog)


def test_malformed_bodies_never_get_a_5xx(
    client: TestClient, make_user, caplog: pytest.LogCaptureFixture
) -> None:
    signed_in = make_user()
    caplog.set_level(logging.INFO)

    @SETTINGS
    @given(body=HOSTILE_BODIES, with_credentials=st.booleans())
    def attack(body: HostileBody, with_credentials: bool) -> None:
        caplog.clear()
        headers = (signed_in if with_credentials else {}) | {"Content-Type": body.content_type}
        assert_request_error(client.post("/graphql", content=body.content, headers=headers))
        assert_quiet(caplog)

    attack()


def test_hostile_get_parameters_never_get_a_5xx(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    @SETTINGS
    @given(body=TEXT_KINDS, parameter=st.sampled_from(["variables", "extensions"]))
    def attack(body: HostileBody, parameter: str) -> None:
        caplog.clear()
        params = {"query": "{ tools { id } }", parameter: body.content.decode()}
        assert_request_error(client.get("/graphql", params=params))
        assert_quiet(caplog)

    attack()


def test_other_refusals_are_graphql_errors_too(client: TestClient) -> None:
    get_mutation = client.get("/graphql", params={"query": "mutation { deleteAgent(id: 1) }"})
    assert_request_error(get_mutation)
    multipart = client.post("/graphql", files={"operations": (None, "{}")})
    assert_request_error(multipart)
    unknown_operation = client.post(
        "/graphql", json={"query": "query A { tools { id } }", "operationName": "B"}
    )
    assert_request_error(unknown_operation)


@pytest.mark.parametrize(
    "query",
    [
        "{ tools " + "{ id " * 300 + "}" * 301,
        "{ tools(family: " + "[" * 150 + '"x"' + "]" * 150 + ") { id } }",
        'mutation { createAgent(input: {name: "a", config: {model_options: {k: '
        + "[" * 190 + "1" + "]" * 190 + "}}}) { agent { id } } }",
        'mutation { createAgent(input: {name: "a", config: '
        + '{a: ' * 190 + "1" + "}" * 190 + "}) { agent { id } } }",
        "query Q { ...F } " + " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(300)),
        "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
    ],
    ids=["selections", "list-literal", "deep-json-literal", "deep-object-literal", "fragments", "cycle"],
)  # fmt: skip
def test_hostile_documents_are_typed_errors(
    client: TestClient, make_user, caplog: pytest.LogCaptureFixture, query: str
) -> None:
    headers = make_user()
    caplog.set_level(logging.INFO)
    response = client.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200
    codes = {error["extensions"]["code"] for error in response.json()["errors"]}
    assert codes, response.text[:300]
    assert "INTERNAL" not in codes, response.text[:300]
    assert_quiet(caplog)


HOSTILE_WS_MESSAGES = [
    "not json",
    '"connection_init"',
    "null",
    "[]",
    "3",
    "{}",
    '{"type": ["subscribe"]}',
    '{"type": "subscribe", "id": ["1"], "payload": {"query": "{ tools { id } }"}}',
    '{"type": "subscribe", "id": "1", "payload": "{ tools { id } }"}',
    '{"type": "subscribe", "id": "1", "payload": {"query": 3}}',
    '{"type": "subscribe", "id": "1", "payload": {"query": "{ tools { id } }", "variables": [1]}}',
    '{"type": "subscribe", "id": "1", "payload": {"query": "{ tools { id } }", "operationName": {}}}',
    '{"type": "subscribe", "id": "1", "payload": {"query": "{ tools { id } }", "variables": '
    + "[" * 3000
    + "]" * 3000
    + "}}",
    '{"type": "subscribe", "id": "1", "payload": {"query": "{ tools { id } }", "x": NaN}}',
    '{"type": "complete"}',
    '{"type": "connection_init", "payload": {"Authorization": ' + "[" * 100 + "]" * 100 + "}}",
]


@pytest.mark.parametrize("message", HOSTILE_WS_MESSAGES)
@pytest.mark.parametrize("initialised", [False, True])
def test_hostile_websocket_messages_close_with_4400(
    client: TestClient, caplog: pytest.LogCaptureFixture, message: str, initialised: bool
) -> None:
    caplog.set_level(logging.INFO)
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket:
        if initialised:
            socket.send_json({"type": "connection_init", "payload": {}})
            assert socket.receive_json()["type"] == "connection_ack"
        socket.send_text(message)
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
    assert closed.value.code == 4400
    assert_quiet(caplog)


@pytest.mark.parametrize("message", HOSTILE_WS_MESSAGES)
def test_hostile_legacy_websocket_messages_are_ignored(
    client: TestClient, caplog: pytest.LogCaptureFixture, message: str
) -> None:
    caplog.set_level(logging.INFO)
    with client.websocket_connect("/graphql", subprotocols=["graphql-ws"]) as socket:
        socket.send_json({"type": "connection_init", "payload": {}})
        assert socket.receive_json()["type"] == "connection_ack"
        socket.send_text(message)
        # The connection still answers (graphql-ws runs subscriptions only, so: an error).
        socket.send_json({"type": "start", "id": "ok", "payload": {"query": "{ tools { id } }"}})
        answer = socket.receive_json()
        assert (answer["type"], answer["id"]) == ("error", "ok")
        assert answer["payload"]["message"] == "queries are not allowed"
        assert answer["payload"]["extensions"]["code"] == "BAD_REQUEST"
    assert_quiet(caplog)


def test_subscribe_payload_with_bad_variables_is_a_typed_error(client: TestClient) -> None:
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket:
        socket.send_json({"type": "connection_init", "payload": {"Authorization": {"a": [1]}}})
        assert socket.receive_json()["type"] == "connection_ack"
        socket.send_text(json.dumps({
            "type": "subscribe", "id": "1",
            "payload": {"query": "query ($n: Int!) { agents(first: $n) { id } }",
                        "variables": {"n": [[[1]]]}},
        }))  # fmt: skip
        answer = socket.receive_json()
    assert answer["type"] == "next"
    assert answer["payload"]["data"] is None
    codes = [error["extensions"]["code"] for error in answer["payload"]["errors"]]
    assert codes == ["GRAPHQL_VALIDATION_FAILED"]
