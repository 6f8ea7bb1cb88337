"""How many database connections `pasar serve` may open, against what PostgreSQL allows.

Each worker keeps up to `PASAR_DB_POOL_SIZE` connections for units of work and
`PASAR_DB_READ_POOL_SIZE` for reads, plus two of its own (the revocation listener and the run
engine's). Started with more workers than `max_connections` fits, the server would answer
"too many connections" under load; `serve` refuses to start instead, saying what to change.
The embedded PostgreSQL is started with room for them.
"""

from __future__ import annotations

import asyncio

import asyncpg
from pasar_core.errors import StartupError
from pasar_core.settings import Settings

OWN_CONNECTIONS = 2
EMBEDDED_SPARE = 10  # psql sessions, `pasar` commands beside the server
EMBEDDED_MINIMUM = 100  # PostgreSQL's default


def connections_per_worker(settings: Settings) -> int:
    return settings.db_pool_size + settings.db_read_pool_size + OWN_CONNECTIONS


def embedded_max_connections(settings: Settings, workers: int) -> int:
    return max(EMBEDDED_MINIMUM, workers * connections_per_worker(settings) + EMBEDDED_SPARE)


def check_connection_budget(settings: Settings, workers: int, database_url: str) -> None:
    """Raises `StartupError` when `workers` workers may open more connections than
    `database_url`'s server allows."""
    needed = workers * connections_per_worker(settings)
    allowed = asyncio.run(_max_connections(database_url))
    if needed > allowed:
        raise StartupError(
            f"{workers} worker(s) x ({settings.db_pool_size} pool + {settings.db_read_pool_size} "
            f"read pool + {OWN_CONNECTIONS}) = {needed} database connections, but PostgreSQL's "
            f"max_connections is {allowed}: use fewer workers (--workers, PASAR_WORKERS), a "
            "smaller PASAR_DB_POOL_SIZE or PASAR_DB_READ_POOL_SIZE, or raise max_connections"
        )


async def _max_connections(database_url: str) -> int:
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    try:
        connection = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError) as error:
        raise StartupError(f"cannot reach the database to check max_connections: {error}") from None
    try:
        return int(await connection.fetchval("SHOW max_connections"))
    finally:
        await connection.close()
