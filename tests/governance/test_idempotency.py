"""Idempotency-Key on POST /agents, POST /tools and execute: the first answer is replayed, a
reused key with another body is 422, and concurrent duplicates create exactly one."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pasar_core.settings import Settings
from starlette.testclient import TestClient

from pasar.app import create_app

AGENT = {"name": "once", "tools": ["txt:read"]}


def with_key(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def test_the_first_answer_is_replayed(client: TestClient, make_user) -> None:
    headers = make_user()
    key = with_key(headers, "create-notes-1")
    first = client.post("/agents", json=AGENT, headers=key)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    # Same body, other key order and spacing: the same request.
    again = client.post("/agents", content=b'{"tools": ["txt:read"],  "name": "once"}',
                        headers={**key, "Content-Type": "application/json"})  # fmt: skip
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(client.get("/agents", headers=headers).json()["agents"]) == 1
    # Another body with the key: refused, nothing created.
    other = client.post("/agents", json={**AGENT, "name": "twice"}, headers=key)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    # The key is the caller's own: another user with the same key creates their own agent.
    stranger = make_user()
    theirs = client.post("/agents", json=AGENT, headers=with_key(stranger, "create-notes-1"))
    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["agent_id"] != first.json()["agent_id"]
    # Without the header every request creates.
    client.post("/agents", json=AGENT, headers=headers)
    assert len(client.get("/agents", headers=headers).json()["agents"]) == 2


def test_a_client_error_is_replayed_and_the_key_is_per_route(client: TestClient, make_user) -> None:
    headers = with_key(make_user(), "k-unknown-tool")
    bad = {"name": "x", "tools": ["no:such"]}
    first = client.post("/agents", json=bad, headers=headers)
    assert first.status_code == 422
    again = client.post("/agents", json=bad, headers=headers)
    assert (again.status_code, again.json()) == (422, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    # Another route keeps its own keys.
    tool = {"id": "k:echo", "title": "Echo", "description": "echo", "effect": "read",
            "input_schema": {"type": "object"}, "output_schema": {"type": "object"},
            "implementation": {"kind": "http", "method": "GET",
                               "url": "http://127.0.0.1:9/x"}}  # fmt: skip
    registered = client.post("/tools", json=tool, headers=headers)
    assert registered.status_code in (201, 422), registered.text
    assert "Idempotent-Replayed" not in registered.headers


def test_execute_is_run_once(client: TestClient, make_user) -> None:
    headers = make_user()
    config = {"model": "scripted", "model_options": {"script": [{"content": "hi"}]}}
    agent_id = client.post("/agents", json={**AGENT, "config": config},
                           headers=headers).json()["agent_id"]  # fmt: skip
    key = with_key(headers, str(uuid.uuid4()))
    first = client.post(f"/agents/{agent_id}/execute", json={"input": "go"}, headers=key)
    again = client.post(f"/agents/{agent_id}/execute", json={"input": "go"}, headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json()["execution_id"] == first.json()["execution_id"]
    runs = client.get(f"/agents/{agent_id}/executions", headers=headers).json()
    assert len(runs["executions"]) == 1


def test_a_hundred_concurrent_duplicates_create_one_agent(pasar_settings: Settings) -> None:
    settings = pasar_settings.with_overrides(db_pool_size=10)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        credentials = {"email": "many@example.com", "password": "correct horse battery"}
        client.post("/auth/signup", json=credentials)
        token = client.post("/auth/token", json=credentials).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "one-agent"}

        def post(_: int) -> Any:
            return client.post("/agents", json=AGENT, headers=headers)

        with ThreadPoolExecutor(max_workers=100) as pool:
            answers = list(pool.map(post, range(100)))
        statuses = [answer.status_code for answer in answers]
        assert set(statuses) <= {201, 409, 503}, statuses
        created = {a.json()["agent_id"] for a in answers if a.status_code == 201}
        assert len(created) == 1, created
        fresh = [
            a for a in answers if a.status_code == 201 and "Idempotent-Replayed" not in a.headers
        ]
        assert len(fresh) == 1
        for answer in answers:
            if answer.status_code == 409:
                assert answer.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_PROGRESS"
                assert answer.headers["Retry-After"] == "1"
        agents = client.get("/agents", headers={"Authorization": f"Bearer {token}"}).json()
        assert [a["id"] for a in agents["agents"]] == list(created)


def test_hostile_keys_are_typed_4xx(client: TestClient, make_user) -> None:
    headers = make_user()

    @settings(max_examples=40, deadline=None)
    @given(st.text(max_size=300).filter(lambda k: "\r" not in k and "\n" not in k))
    def check(key: str) -> None:
        try:
            encoded = key.encode("latin-1")
        except UnicodeEncodeError:
            return  # not sendable as an HTTP header
        response = client.post(
            "/agents", json=AGENT, headers={**headers, "Idempotency-Key": encoded}
        )
        assert response.status_code in (201, 400, 422), response.text
        if response.status_code == 400:
            assert response.json()["error"]["code"] == "IDEMPOTENCY_KEY_INVALID"

    check()


def test_graphql_mutations_take_an_idempotency_key(client: TestClient, make_user) -> None:
    headers = make_user()
    create = """mutation($key: String) { createAgent(input: {name: "g", tools: ["txt:read"]},
        idempotencyKey: $key) { agent { id name } authRequired missingScopes } }"""

    def send(query: str, **variables: Any) -> Any:
        return client.post("/graphql", json={"query": query, "variables": variables},
                           headers=headers).json()  # fmt: skip

    first = send(create, key="g-1")
    again = send(create, key="g-1")
    assert "errors" not in first, first
    assert again == first
    other = send(create.replace('name: "g"', 'name: "h"'), key="g-1")
    assert other["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    bad = send(create, key="")
    assert bad["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_INVALID"
    assert len(client.get("/agents", headers=headers).json()["agents"]) == 1
    agent_id = first["data"]["createAgent"]["agent"]["id"]
    run = """mutation($id: ID!, $key: String) { executeAgent(agentId: $id, input: "go",
        idempotencyKey: $key) { id } }"""
    one = send(run, id=agent_id, key="r-1")
    two = send(run, id=agent_id, key="r-1")
    assert "errors" not in one, one
    assert one["data"]["executeAgent"]["id"] == two["data"]["executeAgent"]["id"]
    # A failed mutation keeps nothing: the key still works for a valid request.
    unknown = send(create.replace('"txt:read"', '"no:such"'), key="g-2")
    assert unknown["errors"][0]["extensions"]["code"] == "UNKNOWN_TOOLS"
    retried = send(create.replace('"txt:read"', '"no:such"'), key="g-2")
    assert retried["errors"][0]["extensions"]["code"] == "UNKNOWN_TOOLS"


def test_an_expired_key_runs_again_and_expired_keys_are_deleted(
    pasar_settings: Settings, make_user
) -> None:
    settings = pasar_settings.with_overrides(idempotency_window_s=-1)  # every claim is expired
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        credentials = {"email": "exp@example.com", "password": "correct horse battery"}
        client.post("/auth/signup", json=credentials)
        token = client.post("/auth/token", json=credentials).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        first = client.post("/agents", json=AGENT, headers=with_key(headers, "old"))
        second = client.post(
            "/agents", json={**AGENT, "name": "x"}, headers=with_key(headers, "old")
        )
        assert (first.status_code, second.status_code) == (201, 201)  # taken over, not reused
        assert "Idempotent-Replayed" not in second.headers
        client.post("/agents", json=AGENT, headers=with_key(headers, "new"))

        async def keys() -> list[str]:
            from sqlalchemy import text

            async with client.app_state["services"].sessionmaker() as session:
                return list(
                    (await session.execute(text("SELECT key FROM idempotency_keys"))).scalars()
                )

        assert client.portal is not None
        assert client.portal.call(keys) == ["new"]


def test_a_key_is_scoped_to_the_organisation_the_caller_acts_in(
    client: TestClient, make_user
) -> None:
    headers = make_user()
    personal = client.get("/organisations", headers=headers).json()["current"]
    team = client.post("/organisations", json={"name": "team"}, headers=headers).json()["id"]
    switched = client.post("/auth/switch", json={"organisation_id": team}, headers=headers)
    in_team = {"Authorization": f"Bearer {switched.json()['access_token']}"}
    first = client.post("/agents", json=AGENT, headers=with_key(headers, "same-key"))
    assert first.status_code == 201
    # The same user, key and body in another organisation: not the first answer (an agent of
    # the personal organisation), a new agent of the team.
    second = client.post("/agents", json=AGENT, headers=with_key(in_team, "same-key"))
    assert second.status_code == 201, second.text
    assert "Idempotent-Replayed" not in second.headers
    assert second.json()["agent_id"] != first.json()["agent_id"]
    assert [a["id"] for a in client.get("/agents", headers=in_team).json()["agents"]] == [
        second.json()["agent_id"]
    ]
    # An API key of the team shares the team's claims of its creator (the same caller there).
    key = client.post("/api-keys", json={"name": "ci"}, headers=in_team).json()["key"]
    replayed = client.post("/agents", json=AGENT,
                           headers={"X-API-Key": key, "Idempotency-Key": "same-key"})  # fmt: skip
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert replayed.json()["agent_id"] == second.json()["agent_id"]
    assert personal != team


def test_expired_keys_are_swept_by_the_servers_maintenance_job(pasar_settings: Settings) -> None:
    """Nobody's request deletes a departed caller's expired keys: the serving process's
    periodic job (with retention) does."""
    import time

    from sqlalchemy import text

    settings = pasar_settings.with_overrides(idempotency_window_s=-1, retention_interval_s=0.2)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        credentials = {"email": f"sweep-{uuid.uuid4().hex[:6]}@example.com",
                       "password": "correct horse battery"}  # fmt: skip
        client.post("/auth/signup", json=credentials)
        token = client.post("/auth/token", json=credentials).json()["access_token"]
        headers = with_key({"Authorization": f"Bearer {token}"}, "gone")
        assert client.post("/agents", json=AGENT, headers=headers).status_code == 201
        services = client.app_state["services"]

        async def count() -> int:
            async with services.sessionmaker() as session:
                return int(await session.scalar(text("SELECT count(*) FROM idempotency_keys")) or 0)

        assert client.portal is not None
        for _ in range(300):  # the job deletes it; the bound only ends a broken test
            if client.portal.call(count) == 0:
                break
            time.sleep(0.1)
        assert client.portal.call(count) == 0
