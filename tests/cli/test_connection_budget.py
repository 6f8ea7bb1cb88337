"""`pasar serve` refuses more workers than PostgreSQL's max_connections fits, saying what to
change, and starts its embedded PostgreSQL with room for them."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from pasar_core.errors import StartupError
from pasar_core.settings import Settings
from pasar_core.storage.db import asyncpg_dsn

from pasar.connection_budget import (
    check_connection_budget,
    connections_per_worker,
    embedded_max_connections,
)


def max_connections(url: str) -> int:
    async def show() -> int:
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            return int(await connection.fetchval("SHOW max_connections"))
        finally:
            await connection.close()

    return asyncio.run(show())


def test_workers_that_fit_start_and_one_more_is_refused(pasar_settings: Settings) -> None:
    url = pasar_settings.database_url
    assert url is not None
    allowed = max_connections(url)
    per_worker = connections_per_worker(pasar_settings)
    assert per_worker == pasar_settings.db_pool_size + pasar_settings.db_read_pool_size + 2
    fits = allowed // per_worker
    check_connection_budget(pasar_settings, fits, url)  # no error
    with pytest.raises(StartupError) as refused:
        check_connection_budget(pasar_settings, fits + 1, url)
    message = str(refused.value)
    assert f"max_connections is {allowed}" in message
    assert "--workers" in message
    assert "\n" not in message


def test_an_unreachable_database_is_a_startup_error(pasar_settings: Settings) -> None:
    with pytest.raises(StartupError, match="cannot reach the database"):
        check_connection_budget(pasar_settings, 1, "postgresql://nobody:x@127.0.0.1:9/none")


def test_the_embedded_server_has_room_for_every_worker() -> None:
    settings = Settings(db_pool_size=20, db_read_pool_size=10)
    assert embedded_max_connections(settings, 1) == 100  # PostgreSQL's default at least
    assert embedded_max_connections(settings, 8) >= 8 * 32
