"""The tool catalogue, health endpoints and the OpenAPI document."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest
from jsonschema import Draft202012Validator
from pasar_core.storage.migrate import known_revisions
from pasar_core.testing import PostgresForTests
from sqlalchemy.engine import make_url
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


READY = {"status": "ok", "database": "ok", "migrations": "current"}


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == READY


def test_readiness_follows_the_schema_revision(
    client: TestClient, pasar_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Ready on this release's head or on a revision it does not ship (a later release's
    expand step, during a rolling update); not ready while migrations are pending or absent."""

    async def execute(statement: str) -> None:
        url = make_url(pasar_database_url).set(drivername="postgresql")
        connection = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    head, _ = known_revisions()
    asyncio.run(execute("UPDATE alembic_version SET version_num = '0016_invitation_secrets'"))
    with caplog.at_level(logging.WARNING, logger="pasar.health"):
        behind = client.get("/readyz")
    assert behind.status_code == 503
    assert behind.json() == {"status": "unavailable", "database": "ok", "migrations": "behind"}
    assert [r.getMessage() for r in caplog.records if r.name == "pasar.health"] == [
        "readiness check failed: database schema behind"
    ]
    asyncio.run(execute("UPDATE alembic_version SET version_num = '9999_a_later_release'"))
    assert client.get("/readyz").json() == {**READY, "migrations": "newer"}
    asyncio.run(execute(f"UPDATE alembic_version SET version_num = '{head}'"))
    assert client.get("/readyz").json() == READY
    asyncio.run(execute("ALTER TABLE alembic_version RENAME TO alembic_version_moved"))
    missing = client.get("/readyz")
    assert missing.status_code == 503
    assert missing.json()["migrations"] == "missing"
    asyncio.run(execute("ALTER TABLE alembic_version_moved RENAME TO alembic_version"))
    assert client.get("/readyz").json() == READY


def test_readiness_is_503_while_the_database_refuses_connections(
    client: TestClient,
    pasar_postgres: PostgresForTests,
    pasar_database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    database = make_url(pasar_database_url).database
    assert client.get("/readyz").status_code == 200  # the pool holds a live connection now

    async def run_as_admin(statements: tuple[str, ...]) -> None:
        url = make_url(pasar_postgres.admin_url).set(drivername="postgresql")
        connection = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    def admin(*statements: str) -> None:
        asyncio.run(run_as_admin(statements))

    # The database goes away for new sessions and the server's pooled connections are cut.
    admin(
        f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false',
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'",
    )
    try:
        with caplog.at_level(logging.WARNING, logger="pasar.health"):
            down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json() == {"status": "unavailable", "database": "unreachable"}
        [line] = [r.getMessage() for r in caplog.records if r.name == "pasar.health"]
        assert line.startswith("readiness check failed: ")  # one line: the error's type only
        assert database
        assert database not in line
        assert client.get("/healthz").status_code == 200  # the process itself is alive
    finally:
        admin(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')
    assert client.get("/readyz").json() == READY  # and it recovers


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
