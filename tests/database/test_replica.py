"""`DATABASE_READ_URL`: hot reads go to a real streaming replica, except a writer's own reads
for a while after its write (read-your-writes)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from pasar_core.services import Services
from pasar_core.settings import Settings
from pasar_core.storage.migrate import upgrade
from pasar_core.storage.recent_writers import RecentWriters
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.support.replica import Replicated, caught_up, on_replica, replicated_postgres

WINDOW_S = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def replicated() -> Iterator[Replicated]:
    with replicated_postgres() as running:
        upgrade(running.primary_url)
        asyncio.run(caught_up(running))
        yield running


def sign_up(client: TestClient) -> dict[str, str]:
    credentials = {"email": f"r-{uuid.uuid4().hex[:8]}@example.com", "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def create_agent(client: TestClient, headers: dict[str, str], name: str) -> str:
    body = {
        "name": name,
        "tools": [],
        "config": {"model": "scripted", "model_options": {"script": [{"content": "hi"}]}},
    }
    created = client.post("/agents", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["agent_id"])


def test_reads_go_to_the_replica_and_a_writer_reads_its_writes(
    replicated: Replicated, pasar_settings: Settings
) -> None:
    assert asyncio.run(on_replica(replicated, "SELECT pg_is_in_recovery()")) is True
    settings = replace(
        pasar_settings,
        database_url=replicated.primary_url,
        database_read_url=replicated.replica_url,
        db_read_your_writes_s=WINDOW_S,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        services: Services = client.app_state["services"]
        assert services.reads is not None
        clock = Clock()
        services.reads.writers = RecentWriters(WINDOW_S, clock=clock)
        ports: list[int] = []  # the server of each statement the hot reads send

        def note(query: Any) -> None:
            ports.append(query.conn_addr[1])

        services.reads.observe(note)
        headers = sign_up(client)
        first = create_agent(client, headers, "before the pause")
        assert client.portal is not None
        client.portal.call(caught_up, replicated)

        # The replica stops replaying: what is written from now on exists on the primary only.
        asyncio.run(on_replica(replicated, "SELECT pg_wal_replay_pause()"))
        try:
            second = create_agent(client, headers, "during the pause")
            ports.clear()
            # Within the window after its write, the writer reads from the primary.
            assert client.get(f"/agents/{second}", headers=headers).status_code == 200
            assert set(ports) == {replicated.primary_port}

            clock.now += WINDOW_S + 1  # the window has passed: reads go to the replica
            ports.clear()
            assert client.get(f"/agents/{first}", headers=headers).status_code == 200
            assert set(ports) == {replicated.replica_port}
            ports.clear()
            # The replica has not replayed it: asked of the primary before answering 404.
            assert client.get(f"/agents/{second}", headers=headers).status_code == 200
            assert ports[0] == replicated.replica_port  # asked first, then the primary
            assert set(ports) == {replicated.replica_port, replicated.primary_port}

            # GraphQL mutations open the window as REST writes do.
            mutation = 'mutation($a: ID!) { updateAgent(id: $a, input: {name: "renamed"}) { agent { id } } }'
            updated = client.post("/graphql", headers=headers,
                                  json={"query": mutation, "variables": {"a": first}}).json()  # fmt: skip
            assert updated.get("errors") is None, updated
            ports.clear()
            assert client.get(f"/agents/{first}", headers=headers).json()["name"] == "renamed"
            assert set(ports) == {replicated.primary_port}

            # Another user, who wrote nothing, reads from the replica.
            other = sign_up(client)
            ports.clear()
            assert client.get("/agents", headers=other).status_code == 200
            assert set(ports) == {replicated.replica_port}
        finally:
            asyncio.run(on_replica(replicated, "SELECT pg_wal_replay_resume()"))

        clock.now += WINDOW_S + 1
        client.portal.call(caught_up, replicated)
        ports.clear()
        assert client.get(f"/agents/{second}", headers=headers).status_code == 200
        assert set(ports) == {replicated.replica_port}


def test_a_read_through_another_process_finds_what_the_replica_lacks(
    replicated: Replicated, pasar_settings: Settings
) -> None:
    """Round robin: a user writes through one process and reads through another, which never
    saw the write (its read-your-writes window is its own). With the replica's replay paused,
    the other process's read misses on the replica and is answered from the primary; an id
    that exists nowhere is still a 404, after both."""
    settings = replace(
        pasar_settings,
        database_url=replicated.primary_url,
        database_read_url=replicated.replica_url,
        db_read_your_writes_s=WINDOW_S,
    )
    with (
        TestClient(create_app(settings), raise_server_exceptions=False) as writer,
        TestClient(create_app(settings), raise_server_exceptions=False) as reader,
    ):
        services: Services = reader.app_state["services"]
        assert services.reads is not None
        ports: list[int] = []

        def note(query: Any) -> None:
            ports.append(query.conn_addr[1])

        services.reads.observe(note)
        headers = sign_up(writer)
        assert reader.portal is not None
        reader.portal.call(caught_up, replicated)  # the user exists on the replica
        asyncio.run(on_replica(replicated, "SELECT pg_wal_replay_pause()"))
        try:
            agent_id = create_agent(writer, headers, "written elsewhere")
            run = writer.post(f"/agents/{agent_id}/execute", headers=headers,
                              json={"input": "x", "parameters": {"wait": True}}).json()  # fmt: skip
            ports.clear()
            agent = reader.get(f"/agents/{agent_id}", headers=headers)
            assert agent.status_code == 200, agent.text
            assert agent.json()["name"] == "written elsewhere"
            assert ports[0] == replicated.replica_port  # asked first, then the primary
            assert set(ports) == {replicated.replica_port, replicated.primary_port}
            execution = reader.get(f"/executions/{run['execution_id']}", headers=headers)
            assert execution.status_code == 200, execution.text
            assert execution.json()["status"] == "succeeded"
            ports.clear()
            missing = reader.get(f"/agents/{uuid.uuid4()}", headers=headers)
            assert missing.status_code == 404
            assert ports[0] == replicated.replica_port  # asked first, then the primary
            assert set(ports) == {replicated.replica_port, replicated.primary_port}
        finally:
            asyncio.run(on_replica(replicated, "SELECT pg_wal_replay_resume()"))
