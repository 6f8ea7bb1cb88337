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
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql import Executable

from pasar_core.storage.db import asyncpg_dsn, busy, refused_connection

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
APPLICATION_NAME = "pasar-reads"

QueryLogger = Callable[[Any], None]


class CompiledRead:
    """A statement compiled to asyncpg's `$n` SQL, with its bind parameters' order."""

    def __init__(self, statement: Executable) -> None:
        compiled = statement.compile(dialect=_DIALECT)  # type: ignore[attr-defined]
        self.sql: str = str(compiled)
        self.parameters: tuple[str, ...] = tuple(compiled.positiontup or ())

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        return [values[name] for name in self.parameters]


async def _codecs(connection: asyncpg.Connection) -> None:
    """JSON and JSONB as Python values, as SQLAlchemy's asyncpg dialect decodes them."""
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _keep(connection: asyncpg.Connection) -> None:
    """No reset on release: nothing these reads do leaves state on a connection."""


class Reads:
    """The read pool of one process: at most `max_size` connections, opened as needed."""

    def __init__(self, pool: asyncpg.Pool, timeout_s: float) -> None:
        self._pool = pool
        self._timeout_s = timeout_s
        self._observers: list[QueryLogger] = []

    @classmethod
    async def open(cls, database_url: str, *, max_size: int, timeout_s: float) -> Reads:
        pool = await asyncpg.create_pool(
            asyncpg_dsn(database_url),
            min_size=1,
            max_size=max_size,
            init=_codecs,
            reset=_keep,
            server_settings={"application_name": APPLICATION_NAME},
        )
        return cls(pool, timeout_s)

    async def close(self) -> None:
        await self._pool.close()

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

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        try:
            connection = await self._pool.acquire(timeout=self._timeout_s)
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
            await self._pool.release(connection)

    async def fetch_rows(self, read: CompiledRead, **values: Any) -> Sequence[Mapping[str, Any]]:
        """The rows of one read: one statement."""
        async with self._connection() as connection:
            rows: Sequence[Mapping[str, Any]] = await connection.fetch(
                read.sql, *read.arguments(values)
            )
            return rows

    async def fetch_row(self, read: CompiledRead, **values: Any) -> Mapping[str, Any] | None:
        """The first row of one read, or None: one statement."""
        async with self._connection() as connection:
            row: Mapping[str, Any] | None = await connection.fetchrow(
                read.sql, *read.arguments(values)
            )
            return row
