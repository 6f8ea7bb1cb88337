"""Migration 0019_partitions keeps every row both ways: a database with runs, events and
knowledge is taken back to the unpartitioned tables and forward again."""

from __future__ import annotations

import uuid

from alembic import command
from alembic.script import ScriptDirectory
from pasar_core.settings import Settings
from pasar_core.storage.migrate import alembic_config, upgrade
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.database.test_partitions import NOW, add_embedding, owner_of, run, sql


def snapshot(settings: Settings) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    events = sql(settings, "SELECT id, execution_id, seq, type, data FROM execution_events "
                 "ORDER BY id")  # fmt: skip
    chunks = sql(settings, "SELECT id, agent_id, content, dimensions FROM embeddings ORDER BY id")
    return [tuple(row) for row in events], [tuple(row) for row in chunks]


def signed_up(client: TestClient) -> dict[str, str]:
    credentials = {"email": "migrated@example.com", "password": TEST_PASSWORD}
    client.post("/auth/signup", json=credentials)
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_the_migration_keeps_every_row_down_and_up(pasar_settings: Settings) -> None:
    # The app is stopped while the tables are rebuilt (its cached statements name the old ones).
    with TestClient(create_app(pasar_settings)) as client:
        headers = signed_up(client)
        agent, execution_id = run(client, headers)
    add_embedding(pasar_settings, owner_of(pasar_settings, agent), agent, NOW)
    before = snapshot(pasar_settings)
    assert before[0]
    assert before[1]
    url = pasar_settings.database_url or ""
    config = alembic_config(url)
    previous = ScriptDirectory.from_config(config).get_revision("0019_partitions").down_revision
    assert isinstance(previous, str)

    command.downgrade(config, previous)
    assert sql(pasar_settings, "SELECT relkind::text FROM pg_class WHERE relname = "
               "'execution_events'") == [("r",)]  # fmt: skip
    assert snapshot(pasar_settings) == before

    upgrade(url)
    assert sql(pasar_settings, "SELECT relkind::text FROM pg_class WHERE relname = "
               "'execution_events'") == [("p",)]  # fmt: skip
    assert snapshot(pasar_settings) == before
    with TestClient(create_app(pasar_settings)) as client:
        headers = signed_up(client)
        _, later = run(client, headers)
        status = client.get(f"/executions/{execution_id}", headers=headers).json()["status"]
    assert status == "succeeded"
    # New events continue the same id sequence and carry their run's creation time.
    rows = sql(pasar_settings, "SELECT min(e.id), bool_and(e.execution_created_at = x.created_at) "
               "FROM execution_events e JOIN executions x ON x.id = e.execution_id "
               "WHERE x.id = :i", i=uuid.UUID(later))  # fmt: skip
    assert rows[0][0] > max(int(str(row[0])) for row in before[0])
    assert rows[0][1] is True
