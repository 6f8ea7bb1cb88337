"""The embedded PostgreSQL: loopback only, password auth, pgvector, data kept across restarts."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from pasar_core.embedded_pg import EmbeddedPostgres
from sqlalchemy.engine import make_url


@pytest.fixture
def base_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pasar-test-embedded-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def _query(url: str, sql: str) -> object:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


def test_second_start_reuses_the_data(base_dir: Path) -> None:
    first = EmbeddedPostgres(base_dir)
    url = first.start()
    try:
        assert make_url(url).host == "127.0.0.1"
        asyncio.run(_query(url, "CREATE TABLE kept AS SELECT 42 AS n"))
        asyncio.run(_query(url, "CREATE EXTENSION IF NOT EXISTS vector"))
        assert asyncio.run(_query(url, "SELECT '[1,0]'::vector <=> '[0,1]'::vector")) == 1.0
        assert asyncio.run(_query(url, "SHOW unix_socket_directories")) == ""
    finally:
        first.stop()
    second = EmbeddedPostgres(base_dir)
    assert second.start() == url
    try:
        assert asyncio.run(_query(url, "SELECT n FROM kept")) == 42
    finally:
        second.stop()


def test_password_is_required(base_dir: Path) -> None:
    server = EmbeddedPostgres(base_dir)
    url = make_url(server.start())
    try:
        wrong = url.set(password="wrong").render_as_string(hide_password=False)
        with pytest.raises(asyncpg.InvalidPasswordError):
            asyncio.run(_query(wrong, "SELECT 1"))
        assert (base_dir / "connection.json").stat().st_mode & 0o777 == 0o600
    finally:
        server.stop()


def test_a_running_server_is_reused_not_restarted(base_dir: Path) -> None:
    owner = EmbeddedPostgres(base_dir)
    url = owner.start()
    try:
        guest = EmbeddedPostgres(base_dir)
        assert guest.start() == url
        guest.stop()  # does not stop the owner's server
        assert asyncio.run(_query(url, "SELECT 1")) == 1
    finally:
        owner.stop()
