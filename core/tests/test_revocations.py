"""The revoked-session set: filled by NOTIFY, reloaded after a lost connection, and asked of the
table only while it is not known to be complete."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pasar_core.accounts import revocations
from pasar_core.accounts.revocations import RevocationListener, RevokedSessions
from pasar_core.storage.db import build_engine, build_sessionmaker
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sessionmaker(pasar_database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = build_engine(pasar_database_url, pool_size=2)
    try:
        yield build_sessionmaker(engine)
    finally:
        await engine.dispose()


async def new_user(sessionmaker: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    user_id = uuid.uuid4()
    async with sessionmaker.begin() as session:
        await session.execute(
            text("INSERT INTO users (id, email, password_hash) VALUES (:id, :email, 'h')"),
            {"id": user_id, "email": f"{user_id.hex[:10]}@example.com"},
        )
    return user_id


async def eventually(check: Any) -> None:
    """Until `check()` is true (notifications arrive asynchronously)."""
    for _ in range(3000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


async def test_a_revocation_reaches_another_listener(
    pasar_database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    user_id = await new_user(sessionmaker)
    revoked = RevokedSessions()
    listener = RevocationListener(pasar_database_url, revoked)
    await listener.start()
    try:
        assert revoked.synced
        sid = uuid.uuid4()
        async with sessionmaker.begin() as session:
            await revocations.revoke(session, user_id, [sid], keep_s=3600)
        await eventually(lambda: revoked.is_revoked(sid))
        # Many at once (more than one NOTIFY payload) all arrive.
        many = [uuid.uuid4() for _ in range(revocations.IDS_PER_NOTIFY * 2 + 5)]
        async with sessionmaker.begin() as session:
            await revocations.revoke(session, user_id, many, keep_s=3600)
        await eventually(lambda: all(revoked.is_revoked(s) for s in many))
    finally:
        await listener.close()
    assert not revoked.synced


async def test_missed_announcements_are_loaded_after_a_reconnect(
    pasar_database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    user_id = await new_user(sessionmaker)
    revoked = RevokedSessions()
    listener = RevocationListener(pasar_database_url, revoked)
    await listener.start()
    try:
        # A revocation this listener never hears of: written without its NOTIFY, as if the
        # announcement had been sent while the connection was down.
        missed = uuid.uuid4()
        async with sessionmaker.begin() as session:
            await session.execute(
                text(
                    "INSERT INTO revoked_sessions (session_id, user_id, expires_at) "
                    "VALUES (:sid, :uid, now() + interval '1 hour')"
                ),
                {"sid": missed, "uid": user_id},
            )
        assert not revoked.is_revoked(missed)
        async with sessionmaker.begin() as session:  # and an entry whose tokens have all expired
            await revocations.revoke(session, user_id, [uuid.uuid4()], keep_s=-1)
        connections = listener.connections
        async with sessionmaker.begin() as session:  # the server drops the LISTEN connection
            terminated = await session.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": revocations.APPLICATION_NAME},
            )
        assert terminated == 1
        await asyncio.wait_for(listener.wait_synced(connections), timeout=60)
        assert listener.connections == connections + 1
        assert revoked.is_revoked(missed)
        async with sessionmaker() as session:  # the reload pruned the expired row
            assert await session.scalar(text("SELECT count(*) FROM revoked_sessions")) == 1
    finally:
        await listener.close()


async def test_without_a_listener_the_table_is_asked(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    user_id = await new_user(sessionmaker)
    sid, other, expired = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with sessionmaker.begin() as session:
        await revocations.revoke(session, user_id, [sid], keep_s=3600)
        await revocations.revoke(session, user_id, [expired], keep_s=-1)
    stale = RevokedSessions()  # never synced: a process whose listener is down
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = sessionmaker.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert await revocations.is_revoked(stale, sessionmaker, sid)
        assert not await revocations.is_revoked(stale, sessionmaker, other)
        assert not await revocations.is_revoked(stale, sessionmaker, expired)
        assert len(statements) == 3
        statements.clear()
        synced = RevokedSessions()
        synced.mark(synced=True)
        synced.add([sid], time.time() + 60)
        assert await revocations.is_revoked(synced, sessionmaker, sid)
        assert not await revocations.is_revoked(synced, sessionmaker, other)
        assert statements == []
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_entries_expire_and_a_snapshot_never_drops_fresher_news() -> None:
    revoked = RevokedSessions()
    old, fresh, announced = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = time.time()
    revoked.add([old], now - 1)
    revoked.add([announced], now + 60)  # arrived while a snapshot was being read
    revoked.merge({fresh: now + 60})
    assert not revoked.is_revoked(old)
    assert revoked.is_revoked(fresh)
    assert revoked.is_revoked(announced)
    assert len(revoked) == 2
    revoked.add([fresh], now - 5)  # an older deadline never shortens a later one
    assert revoked.is_revoked(fresh)
