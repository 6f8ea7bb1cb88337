"""The tool catalogue, health endpoints and the OpenAPI document."""

from __future__ import annotations

from jsonschema import Draft202012Validator
from starlette.testclient import TestClient

FIELDS = {
    "id",
    "family",
    "title",
    "description",
    "input_schema",
    "output_schema",
    "scopes",
    "effect",
}


def test_tools_lists_pasar_files_with_schemas(client: TestClient) -> None:
    tools = {tool["id"]: tool for tool in client.get("/tools").json()["tools"]}
    assert {"txt:read", "txt:write", "csv:read", "csv:write"} <= set(tools)
    for tool in tools.values():
        assert set(tool) >= FIELDS
        Draft202012Validator.check_schema(tool["input_schema"])
    assert tools["txt:write"]["effect"] == "write"
    assert tools["csv:read"]["family"] == "files"


def test_tools_filter_and_single_tool(client: TestClient) -> None:
    assert {t["family"] for t in client.get("/tools?family=files").json()["tools"]} == {"files"}
    assert client.get("/tools?family=nothing").json() == {"tools": []}
    assert client.get("/tools/txt:read").json()["id"] == "txt:read"
    missing = client.get("/tools/txt:nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "TOOL_NOT_FOUND"


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok", "database": "ok"}


def test_openapi_document_describes_every_endpoint(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    assert set(paths["/agents"]) == {"post", "get"}
    assert set(paths["/agents/{agent_id}"]) == {"get", "put", "delete"}
    for path in ("/tools", "/auth/signup", "/auth/token", "/api-keys", "/healthz", "/readyz"):
        assert path in paths
    create = paths["/agents"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "AgentInput"
    )
    assert "201" in create["responses"]
    assert "422" in create["responses"]
    schemas = document["components"]["schemas"]
    assert {"AgentInput", "AgentConfig", "AgentSavedOut", "ToolOut", "ErrorOut"} <= set(schemas)
    for name, schema in schemas.items():
        Draft202012Validator.check_schema(schema), name
