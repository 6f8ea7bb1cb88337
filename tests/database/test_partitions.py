"""Run events and embeddings in monthly partitions: rows land in their month's partition,
partitions are created ahead, and retention drops a month whose rows have all expired (and
keeps one in which anything is still kept)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pasar_core.privacy.retention import apply_retention
from pasar_core.settings import Settings
from pasar_core.storage.db import async_url
from pasar_core.storage.partitions import (
    _EVENTS_KEPT,
    TERMINAL,
    add_months,
    drop_expired_partitions,
    ensure_partitions,
    month_start,
    partition_name,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.testclient import TestClient

VECTOR = "[" + ",".join(["0.1"] * 384) + "]"
NOW = datetime.now(UTC)


def with_engine(settings: Settings, work: Callable[[AsyncEngine], Any]) -> Any:
    async def go() -> Any:
        engine = create_async_engine(async_url(settings.database_url or ""))
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def sql(settings: Settings, statement: str, **params: Any) -> list[Any]:
    async def work(engine: AsyncEngine) -> list[Any]:
        async with engine.begin() as conn:
            result = await conn.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []

    result: list[Any] = with_engine(settings, work)
    return result


def run(client: TestClient, headers: dict[str, str]) -> tuple[str, str]:
    config = {"model": "scripted", "model_options": {"script": [{"content": "hi"}]}}
    agent = client.post("/agents", json={"name": "p", "tools": [], "config": config},
                        headers=headers).json()["agent_id"]  # fmt: skip
    done = client.post(f"/agents/{agent}/execute",
                       json={"input": "go", "parameters": {"wait": True}}, headers=headers)  # fmt: skip
    assert done.json()["status"] == "succeeded", done.text
    return agent, done.json()["execution_id"]


def age_run(settings: Settings, execution_id: str, when: datetime) -> None:
    """Make a run (and its events, which move partition) as if created and finished `when`."""
    sql(settings, "UPDATE executions SET created_at = :w, finished_at = :w WHERE id = :i",
        w=when, i=uuid.UUID(execution_id))  # fmt: skip
    sql(settings, "UPDATE execution_events SET execution_created_at = :w WHERE execution_id = :i",
        w=when, i=uuid.UUID(execution_id))  # fmt: skip


def partitions_holding(settings: Settings, table: str, column: str, value: Any) -> set[str]:
    rows = sql(settings, f"SELECT DISTINCT tableoid::regclass::text FROM {table} "
               f"WHERE {column} = :v", v=value)  # fmt: skip
    return {row[0] for row in rows}


def exists(settings: Settings, name: str) -> bool:
    return sql(settings, "SELECT to_regclass(:n) IS NOT NULL", n=name)[0][0] is True


def add_embedding(settings: Settings, user: str, agent: str, when: datetime) -> uuid.UUID:
    embedding_id = uuid.uuid4()
    sql(settings, "INSERT INTO embeddings (id, user_id, agent_id, content, metadata, embedding, "
        "created_at) VALUES (:id, :u, :a, 'c', CAST('{}' AS jsonb), CAST(:v AS vector), :t)",
        id=embedding_id, u=uuid.UUID(user), a=uuid.UUID(agent), v=VECTOR, t=when)  # fmt: skip
    return embedding_id


def owner_of(settings: Settings, agent: str) -> str:
    return str(sql(settings, "SELECT owner_id FROM agents WHERE id = :a", a=uuid.UUID(agent))[0][0])


def test_events_and_embeddings_land_in_their_months_partition(
    client: TestClient, make_user: Callable[..., dict[str, str]], pasar_settings: Settings
) -> None:
    headers = make_user()
    agent, execution_id = run(client, headers)
    this_month = month_start(NOW)
    events = partitions_holding(pasar_settings, "execution_events", "execution_id",
                                uuid.UUID(execution_id))  # fmt: skip
    assert events == {partition_name("execution_events", this_month)}
    created = sql(pasar_settings, "SELECT DISTINCT execution_created_at = x.created_at "
                  "FROM execution_events e JOIN executions x ON x.id = e.execution_id "
                  "WHERE x.id = :i", i=uuid.UUID(execution_id))  # fmt: skip
    assert created == [(True,)]  # every event carries its run's creation time
    user = owner_of(pasar_settings, agent)
    fresh = add_embedding(pasar_settings, user, agent, NOW)
    assert partitions_holding(pasar_settings, "embeddings", "id", fresh) == {
        partition_name("embeddings", this_month)
    }
    # Months nobody created a partition for fall into the DEFAULT partition: never refused.
    ancient = add_embedding(pasar_settings, user, agent, NOW - timedelta(days=3650))
    assert partitions_holding(pasar_settings, "embeddings", "id", ancient) == {"embeddings_default"}
    # ... and that month of embeddings cannot be created any more (its rows stay in DEFAULT).
    ancient_month = month_start(NOW - timedelta(days=3650))
    made = with_engine(pasar_settings,
                       lambda e: ensure_partitions(e, ancient_month, months_ahead=0))  # fmt: skip
    assert made == [partition_name("execution_events", ancient_month)]  # no events reached it
    assert not exists(pasar_settings, partition_name("embeddings", ancient_month))
    # The stored runs are still read back (events across partitions).
    execution = client.get(f"/executions/{execution_id}", headers=headers).json()
    assert execution["status"] == "succeeded"


def test_partitions_are_created_ahead_once(pasar_settings: Settings) -> None:
    later = add_months(month_start(NOW), 14)
    made = with_engine(pasar_settings, lambda e: ensure_partitions(e, later, months_ahead=2))
    expected = [partition_name(table, add_months(later, n))
                for table in ("execution_events", "embeddings") for n in range(3)]  # fmt: skip
    assert made == expected
    assert all(exists(pasar_settings, name) for name in expected)
    again = with_engine(pasar_settings, lambda e: ensure_partitions(e, later, months_ahead=2))
    assert again == []


def test_retention_drops_a_month_whose_every_row_expired_and_keeps_the_others(
    client: TestClient, make_user: Callable[..., dict[str, str]], pasar_settings: Settings
) -> None:
    keeping, expiring = make_user(), make_user()
    old = month_start(NOW - timedelta(days=200)) + timedelta(days=3)
    older = month_start(NOW - timedelta(days=300)) + timedelta(days=3)
    for moment in (old, older):

        async def create(engine: AsyncEngine, moment: datetime = moment) -> list[str]:
            return await ensure_partitions(engine, moment, months_ahead=0)

        with_engine(pasar_settings, create)
    policy = {"execution_days": 30, "knowledge_days": 30}
    assert client.put("/retention", json=policy, headers=expiring).status_code == 200

    # `old`: the expiring organisation's run and knowledge only. `older`: one of each, and a
    # run and a chunk of the organisation that keeps everything.
    expiring_agent, expired_run = run(client, expiring)
    age_run(pasar_settings, expired_run, old)
    _, expired_older_run = run(client, expiring)
    age_run(pasar_settings, expired_older_run, older)
    keeping_agent, kept_run = run(client, keeping)
    age_run(pasar_settings, kept_run, older)
    expiring_user = owner_of(pasar_settings, expiring_agent)
    keeping_user = owner_of(pasar_settings, keeping_agent)
    add_embedding(pasar_settings, expiring_user, expiring_agent, old)
    add_embedding(pasar_settings, expiring_user, expiring_agent, older)
    kept_chunk = add_embedding(pasar_settings, keeping_user, keeping_agent, older)
    old_events = partition_name("execution_events", month_start(old))
    assert partitions_holding(pasar_settings, "execution_events", "execution_id",
                              uuid.UUID(expired_run)) == {old_events}  # fmt: skip

    deleted = with_engine(pasar_settings, lambda e: apply_retention(e, now=NOW))

    for table in ("execution_events", "embeddings"):
        assert not exists(pasar_settings, partition_name(table, month_start(old)))  # dropped
        assert exists(pasar_settings, partition_name(table, month_start(older)))  # kept
    # The expired runs' rows went (the row pass); the kept run keeps its events.
    remaining = {row[0] for row in sql(pasar_settings, "SELECT id::text FROM executions")}
    assert expired_run not in remaining
    assert expired_older_run not in remaining
    assert kept_run in remaining
    kept_events = sql(pasar_settings, "SELECT count(*) FROM execution_events "
                      "WHERE execution_id = :i", i=uuid.UUID(kept_run))  # fmt: skip
    assert kept_events[0][0] > 0
    assert sum(deleted.values()) == 2
    chunks = {row[0] for row in sql(pasar_settings, "SELECT id FROM embeddings")}
    assert chunks == {kept_chunk}
    audited = sql(pasar_settings, "SELECT details->>'partition_dropped' FROM audit_log "
                  "WHERE action = 'retention.applied' AND target_type = 'partition'")  # fmt: skip
    assert {row[0] for row in audited} == {
        partition_name("execution_events", month_start(old)),
        partition_name("embeddings", month_start(old)),
    }
    # The runs that remain still read back, and new runs still land and read.
    assert client.get(f"/executions/{kept_run}", headers=keeping).json()["status"] == "succeeded"
    _, new_run = run(client, expiring)
    assert client.get(f"/executions/{new_run}", headers=expiring).json()["status"] == "succeeded"


def test_a_month_with_an_unfinished_run_is_kept(
    client: TestClient, make_user: Callable[..., dict[str, str]], pasar_settings: Settings
) -> None:
    headers = make_user()
    old = month_start(NOW - timedelta(days=200)) + timedelta(days=3)
    with_engine(pasar_settings, lambda e: ensure_partitions(e, old, months_ahead=0))
    assert client.put("/retention", json={"execution_days": 1}, headers=headers).status_code == 200
    _, execution_id = run(client, headers)
    age_run(pasar_settings, execution_id, old)
    sql(pasar_settings, "UPDATE executions SET status = 'awaiting_approval', finished_at = NULL "
        "WHERE id = :i", i=uuid.UUID(execution_id))  # fmt: skip
    with_engine(pasar_settings, lambda e: apply_retention(e, now=NOW))
    assert exists(pasar_settings, partition_name("execution_events", month_start(old)))
    assert partitions_holding(pasar_settings, "execution_events", "execution_id",
                              uuid.UUID(execution_id))  # fmt: skip


def test_a_drop_whose_lock_is_held_gives_up_and_the_next_pass_drops(
    client: TestClient,
    make_user: Callable[..., dict[str, str]],
    pasar_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reader holds `execution_events` (a long report, a backup): the drop waits at most its
    lock_timeout, logs, leaves the partition and holds no lock; the next pass drops it."""
    headers = make_user()
    old = month_start(NOW - timedelta(days=200)) + timedelta(days=3)
    with_engine(pasar_settings, lambda e: ensure_partitions(e, old, months_ahead=0))
    assert client.put("/retention", json={"execution_days": 1}, headers=headers).status_code == 200
    _, execution_id = run(client, headers)
    age_run(pasar_settings, execution_id, old)
    events = partition_name("execution_events", month_start(old))

    async def blocked(engine: AsyncEngine) -> tuple[dict[str, int], list[Any]]:
        async with engine.connect() as holder:
            await holder.execute(text("BEGIN"))
            await holder.execute(text("LOCK TABLE execution_events IN ACCESS SHARE MODE"))
            dropped = await drop_expired_partitions(engine, NOW, lock_timeout="200ms")
            async with engine.connect() as conn:  # what is left waiting or held on the table
                locks = list((await conn.execute(text(
                    "SELECT l.mode, l.granted FROM pg_locks l WHERE l.relation = "
                    "'execution_events'::regclass AND l.pid <> pg_backend_pid()"
                ))).all())  # fmt: skip
            await holder.execute(text("ROLLBACK"))
        return dropped, locks

    with caplog.at_level(logging.WARNING, logger="pasar.storage.partitions"):
        dropped, locks = with_engine(pasar_settings, blocked)
    assert events not in dropped
    assert exists(pasar_settings, events)
    assert locks == [("AccessShareLock", True)]  # only the holder's: the drop gave up, cleanly
    (line,) = [r.getMessage() for r in caplog.records if events in r.getMessage()]
    assert "55P03" in line  # lock_not_available, logged once
    assert "next retention pass" in line
    again = with_engine(pasar_settings, lambda e: drop_expired_partitions(e, NOW))
    assert events in again
    assert not exists(pasar_settings, events)


def test_the_check_under_the_lock_uses_the_created_at_index(pasar_settings: Settings) -> None:
    """`ix_executions_created` (migration 0023) serves the month lookup the drop makes while
    it holds the parent's lock (sequential scans off: is the index usable at all)."""

    async def plan(engine: AsyncEngine) -> str:
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            start = month_start(NOW - timedelta(days=200))
            rows = await conn.execute(text(f"EXPLAIN {_EVENTS_KEPT.text}"), {
                "start": start, "end": add_months(start, 1), "now": NOW,
                "terminal": list(TERMINAL)})  # fmt: skip
            return "\n".join(row[0] for row in rows)

    found = with_engine(pasar_settings, plan)
    assert "ix_executions_created" in found, found
    valid = sql(pasar_settings, "SELECT indisvalid FROM pg_index WHERE indexrelid = "
                "to_regclass('ix_executions_created')")  # fmt: skip
    assert valid == [(True,)]
