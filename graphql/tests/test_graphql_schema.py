"""The schema without a database: its shape, the public catalogue, limits and error formatting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import strawberry
from pasar_core.errors import NotFound, PasarError, PluginError, UnknownTools
from pasar_graphql.errors import MASKED_MESSAGE
from pasar_graphql.schema import (
    MAX_ALIASES,
    MAX_DEPTH,
    PasarSchema,
    build_schema,
    default_extensions,
)


def codes(body: Mapping[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def test_sdl_has_every_operation_and_type() -> None:
    sdl = build_schema().as_str()
    for line in (
        "tools(family: String = null): [Tool!]!",
        "tool(id: String!): Tool",
        "agents(first: Int! = 50, offset: Int! = 0): [Agent!]!",
        "agent(id: ID!): Agent",
        "me: Viewer!",
        "signUp(email: String!, password: String!): User!",
        "logIn(email: String!, password: String!): AccessToken!",
        'createApiKey(name: String! = "default", expiresInS: Int = null, expiresAt: DateTime = null, role: String = null, operator: Boolean! = false): ApiKey!',
        "revokeApiKey(id: ID!): ApiKeyInfo!",
        "apiKeys(first: Int! = 100, offset: Int! = 0): [ApiKeyInfo!]!",
        "logOut(refreshToken: String!): Boolean!",
        "changePassword(currentPassword: String!, newPassword: String!, revokeApiKeys: Boolean! = false): PasswordChanged!",
        "  createAgent(\n    input: CreateAgentInput!\n",
        "    idempotencyKey: String = null\n  ): AgentSaved!",
        "updateAgent(id: ID!, input: UpdateAgentInput!): AgentSaved!",
        "deleteAgent(id: ID!): Boolean!",
        "toolDetails: [Tool!]!",
        "missingScopes: JSON!",
        "inputSchema: JSON!",
        "effect: ToolEffect!",
    ):
        assert line in sdl, line


def test_tools_lists_the_installed_catalogue(execute) -> None:
    body = execute("{ tools { id family effect timeoutS inputSchema scopes authProvider } }")
    assert "errors" not in body
    tools = {tool["id"]: tool for tool in body["data"]["tools"]}
    assert {"txt:read", "txt:write", "csv:read", "csv:write"} <= set(tools)
    assert tools["txt:read"]["family"] == "files"
    assert tools["txt:read"]["effect"] == "READ"
    assert tools["txt:write"]["effect"] in {"WRITE", "DESTRUCTIVE"}
    assert tools["txt:read"]["inputSchema"]["type"] == "object"
    assert tools["txt:read"]["authProvider"] is None


def test_tools_filters_by_family_and_tool_finds_one(execute) -> None:
    assert execute('{ tools(family: "nope") { id } }')["data"]["tools"] == []
    files = execute('{ tools(family: "files") { id } }')["data"]["tools"]
    assert [tool["id"] for tool in files] == sorted(tool["id"] for tool in files)
    body = execute('{ a: tool(id: "txt:read") { id title } b: tool(id: "no:such") { id } }')
    assert body["data"]["a"]["id"] == "txt:read"
    assert body["data"]["a"]["title"]
    assert body["data"]["b"] is None


@pytest.mark.parametrize(
    "query", ["{ agents { id } }", "{ me { id } }", '{ agent(id: "x") { id } }']
)
def test_missing_credentials_are_unauthenticated(execute, query: str) -> None:
    body = execute(query)
    assert codes(body) == ["UNAUTHENTICATED"]
    assert "Authorization" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer " + "x" * 5000},
    ],
)
def test_bad_credentials_are_unauthenticated(execute, headers: dict[str, str]) -> None:
    assert codes(execute("{ me { id } }", headers=headers)) == ["UNAUTHENTICATED"]


def test_mutations_authenticate_before_touching_input(execute) -> None:
    body = execute(
        'mutation { createAgent(input: {name: "a", tools: ["no:such"]}) { agent { id } } }'
    )
    assert codes(body) == ["UNAUTHENTICATED"]


def test_sign_up_input_is_validated_by_core(execute) -> None:
    body = execute('mutation { signUp(email: "not-an-email", password: "short") { id } }')
    assert codes(body) == ["VALIDATION_FAILED"]
    details = body["errors"][0]["extensions"]["errors"]
    assert {problem["path"] for problem in details} == {"/email", "/password"}
    assert "short" not in str(body)  # the password never echoes back


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ tools { id }", "GRAPHQL_PARSE_FAILED"),
        ("query {", "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ tools { id nope } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ tool { id } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ tool(id: 3) { id } }", "GRAPHQL_VALIDATION_FAILED"),
        ('{ agents(first: "ten") { id } }', "GRAPHQL_VALIDATION_FAILED"),
        ("{ tools }", "GRAPHQL_VALIDATION_FAILED"),
        ("mutation { deleteAgent }", "GRAPHQL_VALIDATION_FAILED"),
    ],
)
def test_syntax_and_validation_errors_carry_a_code(execute, query: str, code: str) -> None:
    body = execute(query)
    assert body["data"] is None
    assert codes(body)
    assert set(codes(body)) == {code}


def test_bad_variables_are_validation_errors(execute) -> None:
    query = "query ($id: String!) { tool(id: $id) { id } }"
    assert codes(execute(query, {"id": 3})) == ["GRAPHQL_VALIDATION_FAILED"]
    assert codes(execute(query, {})) == ["GRAPHQL_VALIDATION_FAILED"]


def test_depth_limit(execute) -> None:
    # The schema is not recursive yet, so only a document deeper than any real field exceeds it.
    deep = "{ agents { toolDetails " + "{ x " * MAX_DEPTH + "}" * MAX_DEPTH + " } }"
    body = execute(deep)
    assert body["data"] is None
    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert any("exceeds maximum operation depth" in error["message"] for error in body["errors"])
    shallow = "{ agents { toolDetails " + "{ x " * 3 + "}" * 3 + " } }"
    assert not any("depth" in error["message"] for error in execute(shallow)["errors"])


def test_alias_limit(execute) -> None:
    ok = " ".join(f't{i}: tool(id: "txt:read") {{ id }}' for i in range(MAX_ALIASES))
    assert "errors" not in execute("{ " + ok + " }")
    too_many = ok + ' extra: tool(id: "txt:read") { id }'
    body = execute("{ " + too_many + " }")
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "aliases" in body["errors"][0]["message"]


def test_token_limit(execute) -> None:
    body = execute("{ " + "tools { id } " * 700 + "}")
    assert codes(body) == ["GRAPHQL_PARSE_FAILED"]
    assert "tokens" in body["errors"][0]["message"]


@strawberry.type
class Boom:
    @strawberry.field
    def crash(self) -> str:
        raise RuntimeError("secret database password in the message")

    @strawberry.field
    def missing(self) -> str | None:
        raise NotFound("no agent with id 'x'")

    @strawberry.field
    def unknown(self) -> str | None:
        raise UnknownTools(["b:b", "a:a"])

    @strawberry.field
    def plugin(self) -> str | None:
        raise PluginError("pasar-files", "txt:read raised ValueError")

    @strawberry.field
    def clash(self) -> str | None:
        raise PasarError("typed", details={"code": "SPOOFED", "where": "here"})

    @strawberry.field
    def null(self) -> str:
        return None  # type: ignore[return-value]


BOOM = PasarSchema(query=Boom, extensions=default_extensions())


def test_unexpected_errors_are_masked(execute) -> None:
    body = execute("{ crash }", schema=BOOM)
    assert body["data"] is None
    assert body["errors"] == [
        {
            "message": MASKED_MESSAGE,
            "locations": [{"line": 1, "column": 3}],
            "path": ["crash"],
            "extensions": {"code": "INTERNAL"},
        }
    ]
    assert codes(execute("{ null }", schema=BOOM)) == ["INTERNAL"]


def test_typed_errors_keep_message_code_and_details(execute) -> None:
    body = execute("{ missing unknown plugin clash }", schema=BOOM)
    assert body["data"] == {"missing": None, "unknown": None, "plugin": None, "clash": None}
    by_path = {error["path"][0]: error for error in body["errors"]}
    assert by_path["missing"]["message"] == "no agent with id 'x'"
    assert by_path["missing"]["extensions"] == {"code": "NOT_FOUND"}
    assert by_path["unknown"]["extensions"] == {"code": "UNKNOWN_TOOLS", "unknown": ["a:a", "b:b"]}
    assert by_path["plugin"]["extensions"] == {"code": "PLUGIN_ERROR", "plugin": "pasar-files"}
    assert by_path["clash"]["extensions"] == {"code": "INTERNAL", "where": "here"}


def test_only_unexpected_errors_are_logged(execute, caplog: pytest.LogCaptureFixture) -> None:
    execute("{ missing unknown }", schema=BOOM)
    execute("{ nope }", schema=BOOM)
    assert not [record for record in caplog.records if record.name == "pasar.graphql"]
    execute("{ crash }", schema=BOOM)
    (record,) = [record for record in caplog.records if record.name == "pasar.graphql"]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_basic_fields_resolve_without_strawberrys_wrapper(execute) -> None:
    from graphql import GraphQLObjectType
    from pasar_graphql.plain_fields import use_plain_resolvers

    schema = build_schema()
    graphql_schema = schema._schema
    tool = graphql_schema.type_map["Tool"]
    assert isinstance(tool, GraphQLObjectType)
    assert {name: getattr(field.resolve, "plain_field", None) for name, field in tool.fields.items()
            if name in ("id", "inputSchema", "timeoutS")} == {
        "id": "id", "inputSchema": "input_schema", "timeoutS": "timeout_s"}  # fmt: skip
    # fields with resolvers of their own keep them
    query = graphql_schema.type_map["Query"]
    assert isinstance(query, GraphQLObjectType)
    assert not hasattr(query.fields["tools"].resolve, "plain_field")
    assert use_plain_resolvers(schema) == 0  # nothing left to replace
    # the values are the same as through Strawberry's resolvers
    body = execute(
        '{ tool(id: "txt:read") { id family timeoutS inputSchema effect } }', schema=schema
    )
    assert body["data"]["tool"]["id"] == "txt:read"
    assert body["data"]["tool"]["family"] == "files"
    assert body["data"]["tool"]["effect"] == "READ"


@strawberry.type
class Thing:
    name: str


@strawberry.type
class Things:
    @strawberry.field
    def thing(self) -> Thing:
        return Thing(name="x")


def test_a_custom_default_resolver_keeps_strawberrys_resolvers() -> None:
    from pasar_graphql.plain_fields import use_plain_resolvers
    from strawberry.schema.config import StrawberryConfig

    custom = strawberry.Schema(
        query=Things, config=StrawberryConfig(default_resolver=lambda o, n: n)
    )
    assert use_plain_resolvers(custom) == 0
    plain = strawberry.Schema(query=Things)
    assert use_plain_resolvers(plain) == 1
    result = plain.execute_sync("{ thing { name } }")
    assert result.errors is None
    assert result.data == {"thing": {"name": "x"}}
