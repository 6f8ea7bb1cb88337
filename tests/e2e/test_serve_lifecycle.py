"""`pasar serve` ends with its process tree: workers die with a killed parent (no stale
workers serving old settings), the next `serve` stops the PostgreSQL a killed one left, a taken
port is refused in one line, and a signal during workers' start-up ends everything."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from tests.e2e.test_serve import serve, stop, wait_until_ready
from tests.support.processes import PROCESS_MARKER, Processes, marked
from tests.support.servers import free_port

MIGRATION_LOCK_ID = 0x70617361  # pasar_core/storage/migrations/env.py: workers migrate under it
WAIT_S = 60  # a bound on waiting for what must happen, not a measure of speed


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pasar-test-life-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def marker_of(process: subprocess.Popen[bytes]) -> str:
    return psutil.Process(process.pid).environ()[PROCESS_MARKER]


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def postgres_running(data_dir: Path) -> bool:
    return (data_dir / "postgres" / "pgdata" / "postmaster.pid").exists()


def test_workers_die_with_a_killed_serve_and_the_next_serve_stops_its_postgres(
    data_dir: Path, processes_started: Processes
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = serve(processes_started, data_dir, port, "--workers", "2", "--dev")
    wait_until_ready(base, first)
    workers = psutil.Process(first.pid).children()
    assert len(workers) == 2
    first.kill()
    first.wait(timeout=WAIT_S)
    wait_for(lambda: not alive(workers), "workers outlived their killed parent")
    first.communicate(timeout=WAIT_S)  # its stderr, closed once no worker holds it
    with pytest.raises(httpx.TransportError):  # nothing answers with the old (dev) settings
        httpx.get(f"{base}/healthz", timeout=2)
    assert postgres_running(data_dir)  # left behind by the killed parent

    second = serve(processes_started, data_dir, port, "--workers", "2")
    wait_until_ready(base, second)
    introspection = {"query": "{ __schema { queryType { name } } }"}
    for _ in range(8):  # every worker answers with the new (production) settings
        refused = httpx.post(f"{base}/graphql", json=introspection).json()
        assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    stderr = stop(second)
    assert second.returncode == 0, stderr
    assert not postgres_running(data_dir), "the orphaned PostgreSQL was never stopped"


def test_serve_on_a_taken_port_exits_with_one_line(
    data_dir: Path, processes_started: Processes
) -> None:
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as granian binds
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = serve(processes_started, data_dir, port)
        _, stderr = process.communicate(timeout=WAIT_S)
    assert process.returncode != 0
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert f"127.0.0.1:{port} is already in use" in lines[0]
    assert not postgres_running(data_dir)  # refused before anything started


async def hold_migration_lock(data_dir: Path) -> asyncpg.Connection:
    """Connect to serve's embedded PostgreSQL as soon as it answers and take the lock workers
    migrate under, so they stay in start-up."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            saved = json.loads((data_dir / "postgres" / "connection.json").read_text())
            connection = await asyncpg.connect(
                host="127.0.0.1",
                port=saved["port"],
                user="pasar",
                password=saved["password"],
                database="pasar",
                timeout=5,
            )
            break
        except (OSError, ValueError, KeyError, asyncpg.PostgresError):
            assert time.monotonic() < deadline, "the embedded PostgreSQL never answered"
            await asyncio.sleep(0.05)
    await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    return connection


async def workers_waiting_for_the_lock(connection: asyncpg.Connection) -> int:
    count: int = await connection.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    )
    return count


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_workers_start_ends_the_tree_and_stops_postgres(
    data_dir: Path, processes_started: Processes, signal_number: int
) -> None:
    port = free_port()
    process = serve(processes_started, data_dir, port, "--workers", "2")
    loop = asyncio.new_event_loop()
    holder: asyncpg.Connection | None = None
    try:
        holder = loop.run_until_complete(hold_migration_lock(data_dir))
        wait_for(
            lambda: loop.run_until_complete(workers_waiting_for_the_lock(holder)) >= 1,
            "no worker reached its migration",
        )
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
        marker = marker_of(process)
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=WAIT_S)  # it ends: before the fix, never
        assert "Traceback" not in stderr.decode(), stderr.decode()
        wait_for(lambda: not alive(tree), "part of serve's process tree outlived it")
        wait_for(lambda: not postgres_running(data_dir), "the embedded PostgreSQL kept running")
        assert not alive(marked(PROCESS_MARKER, marker))  # PostgreSQL's processes included
    finally:
        if holder is not None:
            with contextlib.suppress(Exception):  # its server is gone
                loop.run_until_complete(holder.close(timeout=5))
            holder.terminate()
            loop.run_until_complete(asyncio.sleep(0.1))  # let the transport finish closing
        loop.close()
