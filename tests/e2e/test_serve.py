"""`pasar serve` as a real process on the embedded default: REST and GraphQL over HTTP."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pasar_core.testing import TEST_PASSWORD

from tests.support.processes import Processes
from tests.support.servers import free_port


def wait_until_ready(base: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"pasar serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("pasar serve did not become ready")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pasar-test-serve-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def serve(processes: Processes, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"PASAR_DATA_DIR": str(data_dir), "PASAR_PORT": str(port)}
    return processes.start(
        [sys.executable, "-m", "pasar", "serve", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return stderr.decode()


def test_serve_on_the_embedded_default_twice(data_dir: Path, processes_started: Processes) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = serve(processes_started, data_dir, port)
    try:
        wait_until_ready(base, process)
        credentials = {"email": "tour@example.com", "password": TEST_PASSWORD}
        assert httpx.post(f"{base}/auth/signup", json=credentials).status_code == 201
        token = httpx.post(f"{base}/auth/token", json=credentials).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert "txt:read" in {tool["id"] for tool in httpx.get(f"{base}/tools").json()["tools"]}
        created = httpx.post(
            f"{base}/agents", json={"name": "tour", "tools": ["txt:read"]}, headers=headers
        )
        assert created.status_code == 201
        query = {"query": "{ agents { id name tools } }"}
        graphql = httpx.post(f"{base}/graphql", json=query, headers=headers).json()
        assert graphql["data"]["agents"] == [
            {"id": created.json()["agent_id"], "name": "tour", "tools": ["txt:read"]}
        ]
    finally:
        stderr = stop(process)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    pgdata = data_dir / "postgres" / "pgdata"
    assert not (pgdata / "postmaster.pid").exists(), "the embedded PostgreSQL kept running"

    again = serve(processes_started, data_dir, port)
    try:
        wait_until_ready(base, again)
        token = httpx.post(f"{base}/auth/token", json=credentials).json()["access_token"]
        agents = httpx.get(f"{base}/agents", headers={"Authorization": f"Bearer {token}"}).json()
        assert [agent["name"] for agent in agents["agents"]] == ["tour"]
    finally:
        stop(again)
