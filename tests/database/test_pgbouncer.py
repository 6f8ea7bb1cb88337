"""pasar behind a real PgBouncer in transaction mode: every unit of work and hot read through
it, LISTEN on the direct URL."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from pasar_core.settings import Settings
from pasar_core.storage.db import asyncpg_dsn
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.database.conftest import pgbouncer_for_tests
from tests.support.pgbouncer import PgBouncer

SCRIPT = [
    {"tool_calls": [{"name": "txt_write", "args": {"path": "b.txt", "content": "x"}}]},
    {"content": "done through the pooler"},
]


def through(bouncer: PgBouncer, database_url: str) -> str:
    database = make_url(database_url).database
    return make_url(bouncer.url).set(database=database).render_as_string(hide_password=False)


def sse(client: TestClient, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line:
                if "event" in current:
                    events.append(current)
                current = {}
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
    return events


def test_sign_up_create_run_and_read_events_through_pgbouncer(
    bouncer: PgBouncer, pasar_settings: Settings, pasar_database_url: str
) -> None:
    database = make_url(pasar_database_url).database
    assert database is not None
    settings = replace(
        pasar_settings,
        database_url=through(bouncer, pasar_database_url),
        database_direct_url=pasar_database_url,
        db_statement_cache_size=0,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        before = bouncer.transactions(database)
        credentials = {"email": "pooled@example.com", "password": "correct horse battery staple"}
        assert client.post("/auth/signup", json=credentials).status_code == 201
        token = client.post("/auth/token", json=credentials).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        config = {"model": "scripted", "model_options": {"script": SCRIPT, "delay_ms": 50}}
        created = client.post(
            "/agents", json={"name": "pooled", "tools": ["txt:write"], "config": config},
            headers=headers,
        )  # fmt: skip
        assert created.status_code == 201, created.text
        agent_id = created.json()["agent_id"]
        assert client.get(f"/agents/{agent_id}", headers=headers).json()["name"] == "pooled"
        run = client.post(f"/agents/{agent_id}/execute",
                          json={"input": "go", "parameters": {"wait": False}}, headers=headers)  # fmt: skip
        assert run.status_code in (200, 202), run.text
        execution_id = run.json()["execution_id"]
        # Live: the stream ends on the run's last status, which reaches it through NOTIFY on
        # the direct URL (a LISTEN through transaction pooling would never hear it).
        events = sse(client, f"/executions/{execution_id}/events", headers)
        stored = [event for event in events if "id" in event]
        assert [event["id"] for event in stored] == list(range(1, len(stored) + 1))
        assert stored[-1]["data"]["status"] == "succeeded"
        assert "done through the pooler" in "".join(
            e["data"]["text"] for e in events if e["event"] == "token"
        )
        execution = client.get(f"/executions/{execution_id}", headers=headers).json()
        assert execution["status"] == "succeeded"
        graphql = client.post("/graphql", headers=headers,
                              json={"query": "{ agents { id name } }"}).json()  # fmt: skip
        assert graphql["data"]["agents"] == [{"id": agent_id, "name": "pooled"}]
        # Everything above went through PgBouncer (its own count of pooled transactions).
        assert bouncer.transactions(database) > before + 10


async def _reuse_while_another_client_holds_the_server(url: str, cache_size: int) -> int:
    """A prepares a query; B's open transaction takes that server connection; A runs the query
    again, which PgBouncer sends to another server connection."""
    first = await asyncpg.connect(url, statement_cache_size=cache_size)
    second = await asyncpg.connect(url, statement_cache_size=cache_size)
    try:
        assert await first.fetchval("SELECT $1::int + 1", 1) == 2
        async with second.transaction():
            await second.execute("SELECT 1")
            value: int = await first.fetchval("SELECT $1::int + 1", 2)
            return value
    finally:
        await first.close()
        await second.close()


def test_cached_statements_break_behind_pgbouncer_unless_the_cache_is_off(
    pasar_postgres: Any,
) -> None:
    """Why `PASAR_DB_STATEMENT_CACHE_SIZE=0`: a statement prepared in one transaction lives on
    one server connection, and transaction pooling sends the next one elsewhere."""
    with pgbouncer_for_tests(pasar_postgres.admin_url, pool_size=2) as pooled:
        url = asyncpg_dsn(pooled.url)
        with pytest.raises(asyncpg.exceptions.InvalidSQLStatementNameError):
            asyncio.run(_reuse_while_another_client_holds_the_server(url, cache_size=100))
        assert asyncio.run(_reuse_while_another_client_holds_the_server(url, cache_size=0)) == 3
