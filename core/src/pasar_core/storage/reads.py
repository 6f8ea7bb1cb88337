"""Single-statement reads for the hot paths, without the ORM's unit of work.

A read that returns plain rows gains nothing from a session: no identity map to fill, no
transaction to open and roll back, no lazy or selectin loads after the first statement. A
`CompiledRead` is a SQLAlchemy Core statement compiled once, at import, to asyncpg's SQL; it runs
as one round trip on a connection borrowed from the engine's pool (so the pool's size, timeout
and the codecs SQLAlchemy installs, JSONB included, stay the same) outside any transaction.
Measured in bench/rest_agent.py: the ORM read of an agent was seven round trips.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


class CompiledRead:
    """A statement compiled to asyncpg's `$n` SQL, with its bind parameters' order."""

    def __init__(self, statement: Executable) -> None:
        compiled = statement.compile(dialect=_DIALECT)  # type: ignore[attr-defined]
        self.sql: str = str(compiled)
        self.parameters: tuple[str, ...] = tuple(compiled.positiontup or ())

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        return [values[name] for name in self.parameters]


def engine_of(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    """The engine a sessionmaker is bound to (the one pool both share)."""
    engine = sessionmaker.kw["bind"]
    assert isinstance(engine, AsyncEngine)
    return engine


@contextlib.asynccontextmanager
async def _driver_connection(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Any]:
    """A pooled asyncpg connection outside any transaction (SQLAlchemy starts one only when it
    executes a statement itself, so giving the connection back sends no ROLLBACK either)."""
    async with engine_of(sessionmaker).connect() as connection:
        raw = await connection.get_raw_connection()
        yield raw.driver_connection


async def fetch_rows(
    sessionmaker: async_sessionmaker[AsyncSession], read: CompiledRead, **values: Any
) -> Sequence[Mapping[str, Any]]:
    """The rows of one read: one statement on a pooled connection."""
    async with _driver_connection(sessionmaker) as driver:
        rows: Sequence[Mapping[str, Any]] = await driver.fetch(read.sql, *read.arguments(values))
        return rows


async def fetch_row(
    sessionmaker: async_sessionmaker[AsyncSession], read: CompiledRead, **values: Any
) -> Mapping[str, Any] | None:
    """The first row of one read, or None: one statement on a pooled connection."""
    async with _driver_connection(sessionmaker) as driver:
        row: Mapping[str, Any] | None = await driver.fetchrow(read.sql, *read.arguments(values))
        return row
