"""The hot paths stay cheap: a JWT costs no identity query, an agent read is one statement (REST
and GraphQL), and a full database pool is a quick 503 with Retry-After, never a 500."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from pasar_core.services import Services
from pasar_core.settings import Settings
from pasar_core.storage.db import engine_of
from pasar_core.testing import TEST_PASSWORD, TEST_SECRET_KEY
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.support.statements import Statements

AGENT = {"name": "notes", "tools": ["txt:read", "csv:write", "txt:write"]}
AGENT_READ = "query ($id: ID!) { agent(id: $id) { id name tools toolDetails { id effect } } }"


def services_of(client: TestClient) -> Services:
    found: Services = client.app_state["services"]
    return found


@pytest.fixture
def statements(client: TestClient) -> Iterator[Statements]:
    counter = Statements(services_of(client))
    try:
        yield counter
    finally:
        counter.close()


def warm(client: TestClient, path: str, headers: dict[str, str]) -> None:
    """Send a read once per pooled connection: asyncpg introspects the types of a statement
    the first time a connection prepares it (three statements, once per connection)."""
    for _ in range(4):  # the test pool: four connections
        assert client.get(path, headers=headers).status_code in (200, 404)


def new_agent(client: TestClient, headers: dict[str, str]) -> str:
    created = client.post("/agents", json=AGENT, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["agent_id"])


def test_an_agent_read_is_one_statement_and_no_identity_query(
    client: TestClient, make_user, statements: Statements
) -> None:
    headers = make_user()
    agent_id = new_agent(client, headers)
    warm(client, f"/agents/{agent_id}", headers)
    statements.seen.clear()
    response = client.get(f"/agents/{agent_id}", headers=headers)
    assert response.status_code == 200
    assert response.json()["tools"] == AGENT["tools"]  # in order, from the same statement
    assert len(statements.seen) == 1, statements.seen
    assert "FROM agents" in statements.seen[0]
    assert "users" not in statements.seen[0]  # the caller came from the token alone


def test_another_users_agent_is_not_found_in_one_statement(
    client: TestClient, make_user, statements: Statements
) -> None:
    agent_id = new_agent(client, make_user())
    stranger = make_user()
    warm(client, f"/agents/{agent_id}", stranger)
    statements.seen.clear()
    for path in (f"/agents/{agent_id}", f"/agents/{uuid.uuid4()}"):
        refused = client.get(path, headers=stranger)
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "NOT_FOUND"
    assert len(statements.seen) == 2


def test_listing_agents_is_one_statement(
    client: TestClient, make_user, statements: Statements
) -> None:
    headers = make_user()
    ids = [new_agent(client, headers) for _ in range(3)]
    warm(client, "/agents", headers)
    statements.seen.clear()
    listed = client.get("/agents", headers=headers).json()["agents"]
    assert [agent["id"] for agent in listed] == ids
    assert all(agent["tools"] == AGENT["tools"] for agent in listed)
    assert len(statements.seen) == 1, statements.seen


def test_a_graphql_agent_read_is_one_statement(
    client: TestClient, make_user, statements: Statements
) -> None:
    headers = make_user()
    agent_id = new_agent(client, headers)
    warm(client, f"/agents/{agent_id}", headers)  # the same statement as REST's
    statements.seen.clear()
    body = {"query": AGENT_READ, "variables": {"id": agent_id}}
    for _ in range(2):
        answer = client.post("/graphql", json=body, headers=headers).json()
        assert "errors" not in answer, answer
        assert [tool["id"] for tool in answer["data"]["agent"]["toolDetails"]] == AGENT["tools"]
    assert len(statements.seen) == 2, statements.seen


def test_a_token_from_before_the_email_claim_is_looked_up_once_per_request(
    client: TestClient, make_user, statements: Statements
) -> None:
    headers = make_user()
    claims = jwt.decode(
        headers["Authorization"].removeprefix("Bearer "), options={"verify_signature": False}
    )
    email = claims.pop("email")
    old = jwt.encode(claims, TEST_SECRET_KEY, algorithm="HS256")
    statements.seen.clear()
    me = client.post("/graphql", json={"query": "{ me { email } }"}, headers={
        "Authorization": f"Bearer {old}"
    })  # fmt: skip
    assert me.json() == {"data": {"me": {"email": email}}}
    assert any("FROM users" in sql for sql in statements.seen)


@pytest.fixture
def small_pool(pasar_settings: Settings) -> Iterator[TestClient]:
    """Two connections for units of work, one for reads, and a short wait for one."""
    settings = pasar_settings.with_overrides(
        db_pool_size=2, db_read_pool_size=1, db_pool_timeout_s=0.2
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def hold_every_connection(client: TestClient) -> tuple[list[Any], list[Any]]:
    """Check out every connection the app's two pools may open, on the app's own event loop."""
    services = services_of(client)
    engine = engine_of(services.sessionmaker)
    assert services.reads is not None
    read_pool = services.reads._pool  # the read pool's own asyncpg pool

    async def checkout() -> tuple[list[Any], list[Any]]:
        size = engine.pool.size() + engine.pool._max_overflow  # type: ignore[attr-defined]
        units = [await engine.connect() for _ in range(size)]
        reads = [await read_pool.acquire() for _ in range(read_pool.get_max_size())]
        return units, reads

    assert client.portal is not None
    return client.portal.call(checkout)


def release(client: TestClient, held: tuple[list[Any], list[Any]]) -> None:
    services = services_of(client)
    assert services.reads is not None
    read_pool = services.reads._pool

    async def close() -> None:
        units, reads = held
        for connection in units:
            await connection.close()
        for connection in reads:
            await read_pool.release(connection)

    assert client.portal is not None
    client.portal.call(close)


def log_in(client: TestClient) -> dict[str, str]:
    credentials = {"email": f"p-{uuid.uuid4().hex[:8]}@example.com", "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_a_full_pool_is_a_503_with_retry_after_and_loses_nothing(small_pool: TestClient) -> None:
    client = small_pool
    engine = engine_of(services_of(client).sessionmaker)
    assert engine.pool.timeout() == 0.2  # type: ignore[attr-defined]  # not SQLAlchemy's 30 s
    headers = log_in(client)
    agent_id = new_agent(client, headers)
    held = hold_every_connection(client)
    try:
        refused = [
            client.get(f"/agents/{agent_id}", headers=headers),  # a compiled read
            client.get("/agents", headers=headers),
            client.post("/agents", json=AGENT, headers=headers),  # an ORM unit of work
            client.get("/readyz"),
        ]
        for response in refused[:3]:
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
            error = response.json()["error"]
            assert error["code"] == "UNAVAILABLE"
            assert error["details"] == {"retry_after_s": 1}
        assert refused[3].status_code == 503  # not ready while nothing can reach the database

        graphql = client.post(
            "/graphql", json={"query": AGENT_READ, "variables": {"id": agent_id}}, headers=headers
        )
        assert graphql.status_code == 503
        assert graphql.headers["retry-after"] == "1"
        assert [e["extensions"]["code"] for e in graphql.json()["errors"]] == ["UNAVAILABLE"]
        assert client.get("/healthz").status_code == 200  # the process itself answers
    finally:
        release(client, held)
    # Nothing was half-done: the refused create left no agent, and everything works again.
    listed = client.get("/agents", headers=headers)
    assert listed.status_code == 200
    assert [agent["id"] for agent in listed.json()["agents"]] == [agent_id]
    deadline = time.monotonic() + 30  # the pool hands connections back asynchronously
    while client.get(f"/agents/{agent_id}", headers=headers).status_code != 200:
        assert time.monotonic() < deadline


def test_what_start_up_built_is_frozen_while_serving_and_thawed_after(
    pasar_settings: Settings,
) -> None:
    import gc

    gc.unfreeze()
    with TestClient(create_app(pasar_settings), raise_server_exceptions=False) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 0  # out of the collector's sight while the app serves
    assert gc.get_freeze_count() == 0  # and collectable again once it stopped
