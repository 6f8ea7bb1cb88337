"""Telling "the database is away" (restarting, unreachable, refusing connections) apart from
every other database error: the first is a 503 for a caller and a retry for a writer, the
second a bug."""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc

from pasar_core.errors import Unavailable

UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # the connection broke or could not be made
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up, crashed
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,  # "connection is closed" and its kin
    ConnectionError,
    TimeoutError,  # connecting timed out
    Unavailable,  # every connection of the pool was in use, or the database refused one
)


def is_unavailable(error: BaseException) -> bool:
    """True when `error` (or what it wraps) says the database cannot be reached right now."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, UNAVAILABLE):
            return True
        if isinstance(current, OSError) and current.errno is not None:
            return True  # refused, reset, unreachable: the socket never got an answer
        wrapped = getattr(current, "orig", None)
        if isinstance(wrapped, BaseException) and is_unavailable(wrapped):
            return True
        current = current.__cause__ or current.__context__
    return False
