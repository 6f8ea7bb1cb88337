"""A database that refuses new connections (SQLSTATE 53300 "too many connections", or nothing
listening) is the typed `Unavailable` (503 with Retry-After at the edges) in both pools, never
a raw driver error (a 500). The refusal is made real: a role whose connection limit is
reached, a port nobody listens on."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from pasar_core.errors import Unavailable
from pasar_core.storage.db import asyncpg_dsn, build_engine
from pasar_core.storage.reads import CompiledRead, Reads
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.anyio


def closed_port_url() -> str:
    """A loopback port nothing listens on (bound, then released without listening)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://nobody:x@127.0.0.1:{port}/none"


@pytest.fixture
async def limited_url(pasar_database_url: str) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A URL for a role allowed one connection, and an admin connection to fill it with."""
    admin = await asyncpg.connect(asyncpg_dsn(pasar_database_url))
    role = f"limited_{uuid.uuid4().hex[:8]}"
    await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'limited' CONNECTION LIMIT 1")
    url = make_url(pasar_database_url).set(username=role, password="limited")
    try:
        yield url.render_as_string(hide_password=False), admin
    finally:
        await admin.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
        )
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


async def test_too_many_connections_is_unavailable_in_the_unit_of_work_pool(
    limited_url: tuple[str, asyncpg.Connection],
) -> None:
    url, _ = limited_url
    filler = await asyncpg.connect(asyncpg_dsn(url))  # the role's one connection
    engine = build_engine(url, pool_size=2)
    try:
        with pytest.raises(Unavailable) as refused:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        assert refused.value.status == 503
        assert refused.value.retry_after_s == 1
    finally:
        await filler.close()
        await engine.dispose()


async def test_too_many_connections_is_unavailable_in_the_read_pool(
    limited_url: tuple[str, asyncpg.Connection],
) -> None:
    url, _ = limited_url
    reads = await Reads.open(url, max_size=2, timeout_s=5)  # holds the role's one connection
    one = CompiledRead(select(text("1")))
    try:
        async with reads._connection():  # the open connection, taken
            with pytest.raises(Unavailable) as refused:
                await reads.fetch_rows(one)  # needs a second: the server refuses it
        assert refused.value.status == 503
        assert await reads.fetch_rows(one)  # the pooled connection still serves
    finally:
        await reads.close()


async def test_nothing_listening_is_unavailable_in_the_unit_of_work_pool() -> None:
    engine = build_engine(closed_port_url(), pool_size=1)
    try:
        with pytest.raises(Unavailable):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def test_an_error_that_is_not_a_refusal_is_not_unavailable(pasar_database_url: str) -> None:
    url = make_url(pasar_database_url).set(password="wrong").render_as_string(hide_password=False)
    engine = build_engine(url, pool_size=1)
    try:
        with pytest.raises(Exception, match="password authentication failed") as failed:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        assert not isinstance(failed.value, Unavailable)  # a misconfiguration, not load
    finally:
        await engine.dispose()
