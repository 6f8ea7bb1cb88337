"""Single-statement reads for the hot paths, without the ORM's unit of work.

A read that returns plain rows gains nothing from a session: no identity map to fill, no
transaction to open and roll back, no lazy or selectin loads after the first statement. A
`CompiledRead` is a SQLAlchemy Core statement compiled once, at import, to asyncpg's SQL. `Reads`
runs it as one round trip on a connection of its own small asyncpg pool, outside any
transaction: borrowing one from SQLAlchemy's pool costs three greenlet switches per request
(measured in bench/rest_agent.py: the ORM read of an agent was seven round trips, then one
round trip through SQLAlchemy's pool, then this). Giving a connection back sends nothing either
(asyncpg's default reset is a round trip; these connections never hold state: no transaction,
no LISTEN, no session settings).

A read that waits longer than the pool timeout for a connection is `Unavailable` (503 with
Retry-After at the edges), like every other database use (pasar_core.storage.db).

With a read replica (`DATABASE_READ_URL`) these reads go to a second pool on the replica, except
a user's reads for a short while after that user wrote (pasar_core.storage.recent_writers): those
go to the primary, so a caller always reads back what it just wrote; and a single-row read the
replica answers with nothing is asked of the primary before it is a 404. Behind PgBouncer in
transaction mode (`statement_cache_size=0`) asyncpg prepares no named statements.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql import Executable

from pasar_core.observability.tracing import Tracing
from pasar_core.storage.db import (
    DEFAULT_STATEMENT_CACHE_SIZE,
    asyncpg_dsn,
    busy,
    refused_connection,
)
from pasar_core.storage.recent_writers import RecentWriters

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
APPLICATION_NAME = "pasar-reads"

QueryLogger = Callable[[Any], None]


class CompiledRead:
    """A statement compiled to asyncpg's `$n` SQL, with its bind parameters' order. `name`
    (default: `SELECT` and the first table read) names its span when tracing is on."""

    def __init__(self, statement: Executable, name: str | None = None) -> None:
        compiled = statement.compile(dialect=_DIALECT)  # type: ignore[attr-defined]
        self.sql: str = str(compiled)
        self.parameters: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.name = name or f"SELECT {_main_table(statement)}"

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        return [values[name] for name in self.parameters]


def _main_table(statement: Executable) -> str:
    """The table a SELECT reads from (the left of a join), as its span's name says."""
    froms = getattr(statement, "get_final_froms", None)
    for source in froms() if froms is not None else ():
        while getattr(source, "left", None) is not None:  # a join: its first table
            source = source.left
        if (name := getattr(source, "name", None)) is not None:
            return str(name)
    return "read"


async def _codecs(connection: asyncpg.Connection) -> None:
    """JSON and JSONB as Python values, as SQLAlchemy's asyncpg dialect decodes them."""
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _keep(connection: asyncpg.Connection) -> None:
    """No reset on release: nothing these reads do leaves state on a connection."""


async def _open_pool(url: str, *, max_size: int, statement_cache_size: int) -> asyncpg.Pool:
    pool: asyncpg.Pool = await asyncpg.create_pool(
        asyncpg_dsn(url),
        min_size=1,
        max_size=max_size,
        init=_codecs,
        reset=_keep,
        statement_cache_size=statement_cache_size,
        server_settings={"application_name": APPLICATION_NAME},
    )
    return pool


class Reads:
    """The read pools of one process: at most `max_size` connections each, opened as needed;
    `replica` (optional) serves the reads of users who did not write within `writers`' window."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        timeout_s: float,
        *,
        replica: asyncpg.Pool | None = None,
        writers: RecentWriters | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._pool = pool
        self._tracing = tracing or Tracing()
        self._replica = replica
        self._timeout_s = timeout_s
        self._observers: list[QueryLogger] = []
        self.writers = writers or RecentWriters(0)

    @classmethod
    async def open(
        cls,
        database_url: str,
        *,
        max_size: int,
        timeout_s: float,
        read_url: str | None = None,
        read_your_writes_s: float = 5.0,
        statement_cache_size: int = DEFAULT_STATEMENT_CACHE_SIZE,
        tracing: Tracing | None = None,
    ) -> Reads:
        pool = await _open_pool(
            database_url, max_size=max_size, statement_cache_size=statement_cache_size
        )
        replica = None
        if read_url:
            try:
                replica = await _open_pool(
                    read_url, max_size=max_size, statement_cache_size=statement_cache_size
                )
            except BaseException:
                await pool.close()
                raise
        return cls(pool, timeout_s, replica=replica, writers=RecentWriters(read_your_writes_s),
                   tracing=tracing)  # fmt: skip

    def wrote(self, user_id: uuid.UUID) -> None:
        """`user_id` is writing: its reads go to the primary for a while (read-your-writes)."""
        self.writers.wrote(user_id)

    def _pool_for(self, values: Mapping[str, Any]) -> asyncpg.Pool:
        if self._replica is None or self.writers.wrote_recently(values.get("user_id")):
            return self._pool
        return self._replica

    async def close(self) -> None:
        await self._pool.close()
        if self._replica is not None:
            await self._replica.close()

    def pool_use(self) -> dict[str, int]:
        """Connections checked out and the pool's size (asyncpg pools have no overflow)."""
        size = self._pool.get_size()
        return {"checked_out": size - self._pool.get_idle_size(), "size": self._pool.get_max_size(),
                "overflow": 0}  # fmt: skip

    def observe(self, logger: QueryLogger) -> None:
        """Call `logger` with every statement these reads send (tests count them)."""
        self._observers.append(logger)

    def unobserve(self, logger: QueryLogger) -> None:
        self._observers.remove(logger)

    def _span(
        self, read: CompiledRead, pool: asyncpg.Pool
    ) -> contextlib.AbstractContextManager[Any]:
        """The statement's span: its text has `$n` placeholders, never the values."""
        if not self._tracing.enabled:
            return contextlib.nullcontext()
        return self._tracing.span(read.name, {
            "db.system": "postgresql", "db.statement": read.sql,
            "db.replica": pool is not self._pool,
        })  # fmt: skip

    @contextlib.asynccontextmanager
    async def _connection(self, pool: asyncpg.Pool | None = None) -> AsyncIterator[Any]:
        pool = pool or self._pool
        try:
            connection = await pool.acquire(timeout=self._timeout_s)
        except TimeoutError:
            raise busy() from None
        except Exception as error:  # opening a new connection failed
            if (unavailable := refused_connection(error)) is not None:
                raise unavailable from None
            raise
        observers = tuple(self._observers)
        try:
            for logger in observers:
                connection.add_query_logger(logger)
            yield connection
        finally:
            for logger in observers:
                connection.remove_query_logger(logger)
            await pool.release(connection)

    async def fetch_rows(self, read: CompiledRead, **values: Any) -> Sequence[Mapping[str, Any]]:
        """The rows of one read: one statement."""
        pool = self._pool_for(values)
        with self._span(read, pool):
            async with self._connection(pool) as connection:
                rows: Sequence[Mapping[str, Any]] = await connection.fetch(
                    read.sql, *read.arguments(values)
                )
                return rows

    async def fetch_row(self, read: CompiledRead, **values: Any) -> Mapping[str, Any] | None:
        """The first row of one read, or None: one statement. A row the replica does not have
        is looked for on the primary before None is the answer: the replica may not have
        replayed it yet, and the writer's window is only known to the process it wrote
        through (behind a load balancer, its next read may reach another)."""
        pool = self._pool_for(values)
        row = await self._fetch_row(pool, read, values)
        if row is None and pool is not self._pool:
            row = await self._fetch_row(self._pool, read, values)
        return row

    async def _fetch_row(
        self, pool: asyncpg.Pool, read: CompiledRead, values: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        with self._span(read, pool):
            async with self._connection(pool) as connection:
                row: Mapping[str, Any] | None = await connection.fetchrow(
                    read.sql, *read.arguments(values)
                )
                return row
