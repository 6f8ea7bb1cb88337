"""Revoked sessions: the access tokens of a logged-out session are refused at once, in every
process, without a query per request.

Revoking writes a `revoked_sessions` row (kept for as long as an access token lives) and
announces it with NOTIFY on `pasar_revoked_sessions`, in the revoking transaction. Each serving
process keeps the revoked ids in memory (`RevokedSessions`), filled by a `RevocationListener` that
LISTENs first and then loads the table, so a revocation committed in between is seen one way or
the other. When the LISTEN connection drops, the set is marked stale and authentication asks the
table itself (one query per token check) until the listener has reconnected and reloaded; the
reload also brings in whatever was announced while it was away. A periodic reload bounds how long
a silently dead connection could go unnoticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pasar_core.storage.db import asyncpg_dsn
from pasar_core.storage.models import RevokedSession

log = logging.getLogger("pasar.revocations")

CHANNEL = "pasar_revoked_sessions"
APPLICATION_NAME = "pasar-revocations"
IDS_PER_NOTIFY = 100  # 100 ids stay far below PostgreSQL's 8000-byte payload limit
RESYNC_S = 300.0
CONNECT_TIMEOUT_S = 10.0
MIN_BACKOFF_S, MAX_BACKOFF_S = 0.1, 5.0


class RevokedSessions:
    """The revoked session ids this process knows, each with when it may be forgotten (epoch
    seconds). `synced` is true only while a listener keeps the set complete."""

    def __init__(self) -> None:
        self._until: dict[uuid.UUID, float] = {}
        self._synced = False

    @property
    def synced(self) -> bool:
        return self._synced

    def mark(self, *, synced: bool) -> None:
        self._synced = synced

    def is_revoked(self, session_id: uuid.UUID) -> bool:
        until = self._until.get(session_id)
        if until is None:
            return False
        if until <= time.time():
            self._until.pop(session_id, None)
            return False
        return True

    def add(self, session_ids: Iterable[uuid.UUID], until: float) -> None:
        for session_id in session_ids:
            self._until[session_id] = max(until, self._until.get(session_id, 0.0))

    def merge(self, entries: Mapping[uuid.UUID, float]) -> None:
        """Add a loaded snapshot and drop what has expired. Never replaces: an announcement that
        arrived while the snapshot was read must survive it."""
        now = time.time()
        for session_id, until in entries.items():
            self._until[session_id] = max(until, self._until.get(session_id, 0.0))
        for session_id in [sid for sid, until in self._until.items() if until <= now]:
            del self._until[session_id]

    def __len__(self) -> int:
        return len(self._until)


async def revoke(
    session: AsyncSession, user_id: uuid.UUID, session_ids: Collection[uuid.UUID], keep_s: int
) -> float:
    """Denylist `session_ids` for `keep_s` seconds and announce them, within the caller's
    transaction (NOTIFY is delivered on commit). Returns the epoch they stay revoked until:
    the caller adds them to its own process's set after committing."""
    until = time.time() + keep_s
    if not session_ids:
        return until
    expires_at = datetime.fromtimestamp(until, UTC)
    statement = insert(RevokedSession).values(
        [{"session_id": sid, "user_id": user_id, "expires_at": expires_at} for sid in session_ids]
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[RevokedSession.session_id],
            set_={
                "expires_at": func.greatest(
                    RevokedSession.expires_at, statement.excluded.expires_at
                )
            },
        )
    )
    ids = [str(sid) for sid in session_ids]
    for start in range(0, len(ids), IDS_PER_NOTIFY):
        payload = json.dumps({"until": until, "sessions": ids[start : start + IDS_PER_NOTIFY]})
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
        )
    return until


async def is_revoked(
    revoked: RevokedSessions,
    sessionmaker: async_sessionmaker[AsyncSession],
    session_id: uuid.UUID,
) -> bool:
    """From memory while the listener is synced (no query); from the table otherwise."""
    if revoked.synced:
        return revoked.is_revoked(session_id)
    async with sessionmaker() as session:
        found = await session.scalar(
            select(RevokedSession.session_id).where(
                RevokedSession.session_id == session_id, RevokedSession.expires_at > func.now()
            )
        )
    return found is not None


class RevocationListener:
    """Keeps a `RevokedSessions` complete: one LISTEN connection per process, reconnected with
    back-off when it drops, and a reload of the table after each (re)connection."""

    def __init__(
        self, database_url: str, revoked: RevokedSessions, *, resync_s: float = RESYNC_S
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._revoked = revoked
        self._resync_s = resync_s
        self._connection: Any = None  # asyncpg.Connection
        self._lost = asyncio.Event()
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connections = 0
        """How many times it has connected and loaded (tests wait on a reconnect with it)."""

    async def start(self) -> None:
        """Connect and load before the server takes requests; a failure refuses to boot."""
        await self._connect()
        self._task = asyncio.create_task(self._supervise(), name="pasar-revocation-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._revoked.mark(synced=False)
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def wait_synced(self, after_connections: int) -> None:
        """Until the listener has connected more than `after_connections` times and is synced."""
        while not (self.connections > after_connections and self._revoked.synced):
            self._synced.clear()
            await self._synced.wait()

    async def _connect(self) -> None:
        connection = await asyncpg.connect(
            self._dsn,
            timeout=CONNECT_TIMEOUT_S,
            server_settings={"application_name": APPLICATION_NAME},
        )
        try:
            await connection.add_listener(CHANNEL, self._on_notify)
            connection.add_termination_listener(self._on_terminated)
            await self._reload(connection)  # after LISTEN: nothing can fall in between
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.close()
            raise
        self._connection = connection
        self._lost.clear()
        self.connections += 1
        self._revoked.mark(synced=True)
        self._synced.set()

    async def _reload(self, connection: Any) -> None:
        # Rows outlive their access tokens by nothing: whoever reloads first prunes them.
        await connection.execute(
            "DELETE FROM revoked_sessions WHERE expires_at <= now()", timeout=CONNECT_TIMEOUT_S
        )
        rows = await connection.fetch(
            "SELECT session_id, extract(epoch FROM expires_at)::float8 AS until "
            "FROM revoked_sessions WHERE expires_at > now()",
            timeout=CONNECT_TIMEOUT_S,
        )
        self._revoked.merge({row["session_id"]: row["until"] for row in rows})

    def _lose(self) -> None:
        self._revoked.mark(synced=False)
        self._lost.set()

    def _on_terminated(self, connection: object) -> None:
        if connection is self._connection:
            log.warning("revocation listener lost its connection; reconnecting")
            self._connection = None
            self._lose()

    def _on_notify(self, connection: object, pid: int, channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            until = float(message["until"])
            session_ids = [uuid.UUID(value) for value in message["sessions"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignoring a malformed revocation notification")
            return
        self._revoked.add(session_ids, until)

    async def _supervise(self) -> None:
        delay = MIN_BACKOFF_S
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), timeout=self._resync_s)
            if not self._lost.is_set():
                await self._resync()
                continue
            stale, self._connection = self._connection, None
            if stale is not None:
                with contextlib.suppress(Exception):
                    await stale.close()
            try:
                await self._connect()
                delay = MIN_BACKOFF_S
            except (OSError, TimeoutError, asyncpg.PostgresError) as error:
                log.warning(
                    "revocation listener: reconnecting failed (%s); next try in %.1f s",
                    type(error).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)

    async def _resync(self) -> None:
        """The periodic reload; a connection that cannot answer it is treated as lost."""
        try:
            await self._reload(self._connection)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("revocation listener: reload failed (%s)", type(error).__name__)
            self._lose()


@contextlib.asynccontextmanager
async def watching_revocations(
    database_url: str, revoked: RevokedSessions, *, enabled: bool = True
) -> AsyncIterator[RevocationListener | None]:
    """A started listener for as long as the context lasts (nothing when not `enabled`)."""
    if not enabled:
        yield None
        return
    listener = RevocationListener(database_url, revoked)
    await listener.start()
    try:
        yield listener
    finally:
        await listener.close()
