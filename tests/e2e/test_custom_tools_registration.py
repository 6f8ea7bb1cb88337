"""Custom tool registration over REST and GraphQL, without Docker: ids, privacy, versions,
schema rules and hostile bodies. Each refusal is a typed 4xx; nothing is stored by one."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.e2e.runs import create_agent, error, execute, scripted

Headers = dict[str, str]

SOURCE = "def run(args):\n    return {'total': sum(args['amounts'])}\n"


def body(tool_id: str = "acme:total", **changes: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "id": tool_id,
        "title": "Total",
        "description": "Adds amounts.",
        "input_schema": {
            "type": "object",
            "properties": {"amounts": {"type": "array", "items": {"type": "number"}}},
            "required": ["amounts"],
        },
        "output_schema": {"type": "object", "properties": {"total": {"type": "number"}}},
        "effect": "read",
        "timeout_s": 5,
        "limits": {"memory_mb": 128, "cpus": 0.5},
        "network": {"allow_hosts": []},
        "implementation": {"kind": "python", "source": SOURCE, "entrypoint": "run"},
    }
    definition.update(changes)
    return definition


def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    payload: dict[str, Any] = response.json()["error"]
    assert payload["code"] == code, payload
    return payload


def custom_ids(client: TestClient, headers: Headers | None = None) -> list[str]:
    tools = client.get("/tools", headers=headers or {}).json()["tools"]
    return [tool["id"] for tool in tools if tool["source"] == "custom"]


def test_register_read_update_delete(client: TestClient, make_user) -> None:
    headers = make_user()
    created = client.post("/tools", json=body(), headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["tool_id"] == "acme:total"
    assert created.json()["version"] == 1
    assert created.json()["tool"]["implementation"]["source"] == SOURCE

    assert custom_ids(client, headers) == ["acme:total"]
    detail = client.get("/tools/acme:total", headers=headers).json()
    assert (detail["version"], detail["versions"], detail["kind"]) == (1, [1], "python")

    changed = body(description="Adds amounts, version two.")
    updated = client.put("/tools/acme:total", json=changed, headers=headers)
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == 2
    assert client.get("/tools/acme:total", headers=headers).json()["versions"] == [1, 2]
    first = client.get("/tools/acme:total@1", headers=headers).json()
    assert (first["version"], first["description"]) == (1, "Adds amounts.")
    assert client.get("/tools/acme:total", headers=headers).json()["description"] == (
        "Adds amounts, version two."
    )
    # PUT must name the same id as the path.
    refused(
        client.put("/tools/acme:total", json=body("acme:other"), headers=headers),
        422,
        "TOOL_DEFINITION_INVALID",
    )

    assert client.delete("/tools/acme:total", headers=headers).status_code == 204
    refused(client.get("/tools/acme:total", headers=headers), 404, "TOOL_NOT_FOUND")
    assert custom_ids(client, headers) == []


def test_tools_are_private_and_ids_never_collide(client: TestClient, make_user) -> None:
    alice, bob = make_user(), make_user()
    assert client.post("/tools", json=body(), headers=alice).status_code == 201

    # Others (and anonymous callers) neither see nor reach it.
    assert custom_ids(client, bob) == []
    assert custom_ids(client) == []
    refused(client.get("/tools/acme:total", headers=bob), 404, "TOOL_NOT_FOUND")
    refused(client.get("/tools/acme:total"), 404, "TOOL_NOT_FOUND")
    refused(client.put("/tools/acme:total", json=body(), headers=bob), 404, "TOOL_NOT_FOUND")
    refused(client.delete("/tools/acme:total", headers=bob), 404, "TOOL_NOT_FOUND")
    response = client.post(
        "/agents",
        json={"name": "x", "tools": ["acme:total"], "config": scripted()},
        headers=bob,
    )
    assert response.status_code == 422, response.text

    # The namespace is Alice's: Bob cannot register in it; Alice cannot register twice.
    refused(client.post("/tools", json=body("acme:mine"), headers=bob), 409, "TOOL_ID_TAKEN")
    refused(client.post("/tools", json=body(), headers=alice), 409, "TOOL_EXISTS")
    assert client.post("/tools", json=body("acme:second"), headers=alice).status_code == 201

    # Installed plugins' namespaces and reserved ones are never handed out.
    refused(client.post("/tools", json=body("txt:read"), headers=bob), 409, "TOOL_ID_TAKEN")
    refused(client.post("/tools", json=body("txt:new"), headers=bob), 409, "TOOL_ID_TAKEN")
    refused(
        client.post("/tools", json=body("pasar:x"), headers=bob), 422, "TOOL_DEFINITION_INVALID"
    )
    refused(client.post("/tools", json=body(), headers={}), 401, "UNAUTHENTICATED")
    assert custom_ids(client, bob) == []


SCHEMA_REFUSALS = [
    ({"type": "object", "properties": {"a": {"type": 12}}}, "TOOL_SCHEMA_INVALID"),
    ({"type": "object", "$ref": "https://example.com/schema.json"}, "TOOL_SCHEMA_REMOTE_REF"),
    ({"type": "object", "$ref": "#/$defs/missing"}, "TOOL_SCHEMA_INVALID"),
    ({"type": "object", "$id": "https://example.com/s"}, "TOOL_SCHEMA_REMOTE_REF"),
    (
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "(a)\\1"}}},
        "TOOL_SCHEMA_PATTERN_UNSUPPORTED",
    ),
    (
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=a)a"}}},
        "TOOL_SCHEMA_PATTERN_UNSUPPORTED",
    ),
    (
        {"type": "object", "patternProperties": {"(?<=x)y": {}}},
        "TOOL_SCHEMA_PATTERN_UNSUPPORTED",
    ),
    ({"type": "array"}, "TOOL_DEFINITION_INVALID"),
]


def nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def test_schema_rules(client: TestClient, make_user) -> None:
    headers = make_user()
    for schema, code in SCHEMA_REFUSALS:
        refused(client.post("/tools", json=body(input_schema=schema), headers=headers), 422, code)
        if code != "TOOL_DEFINITION_INVALID":  # an output schema need not be an object
            refused(
                client.post("/tools", json=body(output_schema=schema), headers=headers),
                422,
                code,
            )
    refused(
        client.post("/tools", json=body(input_schema=nested(20)), headers=headers),
        422,
        "TOOL_SCHEMA_TOO_LARGE",
    )
    huge = {"type": "object", "description": "x" * 70_000}
    refused(
        client.post("/tools", json=body(input_schema=huge), headers=headers),
        422,
        "TOOL_SCHEMA_TOO_LARGE",
    )
    # A pattern that backtracks catastrophically elsewhere is linear under RE2: accepted.
    evil = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}}
    assert client.post("/tools", json=body(input_schema=evil), headers=headers).status_code == 201
    assert custom_ids(client, headers) == ["acme:total"]


def test_source_and_limits_rules(client: TestClient, make_user) -> None:
    headers = make_user()
    python = {"kind": "python", "entrypoint": "run"}
    refused(
        client.post("/tools", json=body(implementation=python | {"source": "def run(:"}),
                    headers=headers),
        422, "TOOL_SOURCE_INVALID",
    )  # fmt: skip
    refused(
        client.post("/tools", json=body(implementation=python | {"source": "x = 1\n"}),
                    headers=headers),
        422, "TOOL_ENTRYPOINT_MISSING",
    )  # fmt: skip
    refused(
        client.post("/tools", json=body(limits={"memory_mb": 10**6}), headers=headers),
        422, "VALIDATION_FAILED",
    )  # fmt: skip
    refused(
        client.post("/tools", json=body(network={"allow_hosts": ["10.0.0.1"]}), headers=headers),
        422, "TOOL_DEFINITION_INVALID",
    )  # fmt: skip
    # A python tool's allow_hosts: public hosts, or hosts the operator opened; never metadata,
    # private or intranet names it did not open, nor privileged ports.
    for hosts in (["169.254.169.254"], ["metadata.google.internal"], ["intranet"],
                  ["printer.local"], ["api.example.com:25"], ["[fd00::1]"], ["no such host"],
                  ["127.0.0.1:6379", "192.168.0.1"]):  # fmt: skip
        outside = client.post("/tools", json=body(network={"allow_hosts": hosts}), headers=headers)
        message = refused(outside, 422, "TOOL_DEFINITION_INVALID")["message"]
        assert message.startswith("/network/allow_hosts: "), message
    assert custom_ids(client, headers) == []
    allowed = ["api.example.com", "203.0.114.9:8443", "127.0.0.1", "localhost:8080", "[::1]"]
    egress = client.post("/tools", json=body(network={"allow_hosts": allowed}), headers=headers)
    assert egress.status_code == 201, egress.text
    assert client.get("/tools/acme:total", headers=headers).json()["network"] == {
        "allow_hosts": allowed
    }


def test_a_python_tool_without_a_sandbox_queue_fails_the_call_clearly(
    client: TestClient, make_user
) -> None:
    """The app of this test has no sandbox queue (no Redis, no worker): registration works,
    and a call is a recorded SANDBOX_UNAVAILABLE tool error that says what to start."""
    headers = make_user()
    assert client.post("/tools", json=body(), headers=headers).status_code == 201
    reply = {"tool_calls": [{"name": "acme_total", "args": {"amounts": [1, 2]}}]}
    agent = create_agent(client, headers, ["acme:total"], scripted(reply))
    [step] = [step for step in execute(client, headers, agent)["steps"]
              if step["type"] == "tool_result"]  # fmt: skip
    message = error(step)
    assert message.startswith("SANDBOX_UNAVAILABLE"), message
    assert "pasar worker --queue sandbox" in message or "REDIS" in message, message


def test_graphql_refusals_carry_codes(client: TestClient, make_user) -> None:
    headers = make_user()
    query = "mutation($input: JSON!) { registerTool(input: $input) { toolId } }"
    cases = [
        (body(input_schema={"type": "object", "$ref": "http://x/y"}), "TOOL_SCHEMA_REMOTE_REF"),
        (body(id="Bad Id"), "VALIDATION_FAILED"),
        ({"id": "acme:x"}, "VALIDATION_FAILED"),
        ([1, 2], "VALIDATION_FAILED"),
    ]
    for given_input, code in cases:
        response = client.post(
            "/graphql", json={"query": query, "variables": {"input": given_input}}, headers=headers
        )
        assert response.status_code == 200, response.text
        [problem] = response.json()["errors"]
        assert problem["extensions"]["code"] == code, problem
    anonymous = client.post(
        "/graphql", json={"query": query, "variables": {"input": body()}}
    ).json()
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert custom_ids(client, headers) == []


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)  # fmt: skip
SCHEMA_KEYWORDS = st.sampled_from(
    ["type", "properties", "$ref", "$defs", "pattern", "patternProperties", "items", "allOf",
     "$id", "$schema", "required", "additionalProperties", "$dynamicRef", "minLength", "enum"]
)  # fmt: skip
SCHEMAS = st.recursive(
    st.dictionaries(SCHEMA_KEYWORDS, JSON_VALUES, max_size=4),
    lambda children: st.dictionaries(SCHEMA_KEYWORDS, children | JSON_VALUES, max_size=4),
    max_leaves=12,
)
BODY_KEYS = ["id", "title", "description", "input_schema", "output_schema", "effect",
             "timeout_s", "limits", "network", "implementation", "zzz"]  # fmt: skip
HOSTILE_BODIES = (
    st.builds(
        lambda schema, output: body(input_schema={"type": "object"} | schema, output_schema=output),
        SCHEMAS,
        SCHEMAS,
    )
    | st.builds(
        lambda changes: {**body(), **changes},
        st.dictionaries(st.sampled_from(BODY_KEYS), JSON_VALUES | SCHEMAS, max_size=3),
    )
    | JSON_VALUES
)
ONE_USER: dict[int, Headers] = {}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(HOSTILE_BODIES)
def test_hostile_bodies_get_typed_4xx(client: TestClient, make_user, sent: Any) -> None:
    headers = ONE_USER.setdefault(id(client), make_user())
    response = client.post("/tools", content=json.dumps(sent), headers=headers
                           | {"Content-Type": "application/json"})  # fmt: skip
    if response.status_code == 201:
        # Whatever was accepted reads back as it was sent, and is removed again.
        saved = response.json()["tool"]
        assert saved["input_schema"] == copy.deepcopy(sent["input_schema"])
        assert client.delete(f"/tools/{saved['id']}", headers=headers).status_code == 204
        return
    assert response.status_code in (400, 409, 413, 422), response.text
    problem = response.json()["error"]
    assert isinstance(problem["code"], str), problem
    assert problem["code"].isupper(), problem
    assert problem["message"], problem
