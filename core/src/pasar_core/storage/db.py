"""Engine and sessionmaker factories for PostgreSQL through asyncpg."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from pasar_core.errors import StartupError, Unavailable

DEFAULT_POOL_TIMEOUT_S = 5.0
DEFAULT_STATEMENT_CACHE_SIZE = 100  # asyncpg's and SQLAlchemy's own default
RETRY_AFTER_S = 1
# 53300 too many connections (max_connections or a role's limit); 57P03 starting or stopping.
REFUSED_SQLSTATES = frozenset({"53300", "57P03"})

log = logging.getLogger("pasar.db")

# How long, in all, a checkout in this context may wait for a connection; 0: the pool's timeout.
_PATIENCE: contextvars.ContextVar[float] = contextvars.ContextVar("pasar_db_patience", default=0.0)


@contextlib.contextmanager
def patient_checkouts(seconds: float) -> Iterator[None]:
    """Checkouts made in this context (and in tasks it starts) wait up to `seconds` for a
    connection instead of the pool's timeout. Runs use it: a run that meets a full pool would
    rather wait than be interrupted and resumed, while requests keep their quick 503."""
    token = _PATIENCE.set(seconds)
    try:
        yield
    finally:
        _PATIENCE.reset(token)


def busy() -> Unavailable:
    """Every connection of a pool is in use."""
    return Unavailable(
        "the server is busy (every database connection is in use); try again shortly",
        retry_after_s=RETRY_AFTER_S,
    )


def refused_connection(error: BaseException) -> Unavailable | None:
    """`Unavailable` when opening a connection failed because the database refused or could not
    be reached (too many connections, starting up, connection refused), else None."""
    if not isinstance(error, OSError) and getattr(error, "sqlstate", None) not in REFUSED_SQLSTATES:
        return None
    log.warning("the database refused a new connection: %s", error)
    return Unavailable(
        "the database is not accepting connections right now; try again shortly",
        retry_after_s=RETRY_AFTER_S,
    )


class RefusingPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's pool, but a checkout that waited `timeout` seconds for a connection, or
    whose new connection the database refused, is the typed `Unavailable` (503 with
    Retry-After at the edges) instead of a 500."""

    on_wait: Callable[[], None] = staticmethod(lambda: None)
    """Called when a checkout finds every connection in use (metrics set it per pool)."""
    on_timeout: Callable[[], None] = staticmethod(lambda: None)

    def _do_get(self) -> ConnectionPoolEntry:
        give_up = time.monotonic() + _PATIENCE.get()
        waited = False
        if self.checkedout() >= self.size() + max(self._max_overflow, 0):
            self.on_wait()
        while True:
            try:
                return super()._do_get()
            except exc.TimeoutError:
                if time.monotonic() + self._timeout > give_up:
                    self.on_timeout()
                    raise busy() from None
                if not waited:
                    log.info("every database connection is in use; waiting for one")
                    waited = True
            except Exception as error:
                if (unavailable := refused_connection(error)) is not None:
                    raise unavailable from None
                raise


def async_url(database_url: str) -> str:
    """Accept `postgresql://` or `postgres://` URLs and point them at asyncpg."""
    try:
        url = make_url(database_url)
    except Exception:
        raise StartupError("DATABASE_URL is not a valid database URL") from None
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise StartupError(f"DATABASE_URL must be PostgreSQL, not {url.get_backend_name()!r}")
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def asyncpg_dsn(database_url: str) -> str:
    """The URL as plain asyncpg takes it (for LISTEN connections outside the pool)."""
    url = make_url(async_url(database_url)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def unique_statement_name() -> str:
    """A prepared statement name no other client of a pooled server connection uses."""
    return f"__asyncpg_{uuid.uuid4().hex}__"


def statement_cache_arguments(statement_cache_size: int) -> dict[str, Any]:
    """SQLAlchemy's asyncpg connect arguments for `statement_cache_size` (0: behind PgBouncer
    in transaction mode, where consecutive transactions of one client connection may run on
    different server connections, so a statement prepared in one is unknown in the next, and
    asyncpg's numbered names `__asyncpg_stmt_1__` clash between clients)."""
    if statement_cache_size > 0:
        return {
            "statement_cache_size": statement_cache_size,
            "prepared_statement_cache_size": statement_cache_size,
        }
    return {
        "statement_cache_size": 0,  # asyncpg's own cache (and its statement names)
        "prepared_statement_cache_size": 0,  # SQLAlchemy's cache of prepared statements
        "prepared_statement_name_func": unique_statement_name,
    }


def build_engine(
    database_url: str,
    *,
    pool_size: int = 20,
    pool_timeout_s: float = DEFAULT_POOL_TIMEOUT_S,
    statement_cache_size: int = DEFAULT_STATEMENT_CACHE_SIZE,
) -> AsyncEngine:
    """At most `pool_size` connections, opened as needed and kept; a request that waits longer
    than `pool_timeout_s` for one is refused with `Unavailable` (see `RefusingPool`).
    `statement_cache_size=0` works behind PgBouncer in transaction mode (see
    `statement_cache_arguments`)."""
    # No overflow: SQLAlchemy closes an overflow connection when it is given back, so a busy
    # server kept opening connections (TLS attempt, type introspection: measured in bench/).
    # No pre-ping (a round trip per checkout); connections are recycled instead, and a
    # connection broken by a database restart fails one unit of work.
    return create_async_engine(
        async_url(database_url),
        poolclass=RefusingPool,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout_s,
        pool_recycle=300,
        connect_args=statement_cache_arguments(statement_cache_size),
    )


def build_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def engine_of(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    """The engine a sessionmaker is bound to (its pool)."""
    engine = sessionmaker.kw["bind"]
    assert isinstance(engine, AsyncEngine)
    return engine
