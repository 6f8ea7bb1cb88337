"""Inline runs of `pasar serve` on the embedded default outlive the server process: a server
killed mid-run leaves runs that the restarted server resumes from their recorded steps, and
SIGTERM drains (streams end, in-flight runs are handed back and resumed, the server exits)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pasar_core.testing import TEST_PASSWORD

from tests.support.processes import Processes
from tests.support.servers import free_port

LINE = "written once\n"
ENDED = ("succeeded", "failed", "limit_exceeded", "cancelled")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pasar-test-restart-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def serve(processes: Processes, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"PASAR_DATA_DIR": str(data_dir), "PASAR_PORT": str(port),
            "PASAR_HEARTBEAT_S": "1", "PASAR_STALE_AFTER_S": "3", "PASAR_DRAIN_S": "1"}  # fmt: skip
    process = processes.start(
        [sys.executable, "-m", "pasar", "serve", "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, f"pasar serve exited with {process.returncode}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("pasar serve did not become ready")


def user(base: str) -> dict[str, str]:
    credentials = {"email": "restart@example.com", "password": TEST_PASSWORD}
    httpx.post(f"{base}/auth/signup", json=credentials)
    token = httpx.post(f"{base}/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def appending_agent(base: str, headers: dict[str, str], delay_ms: int) -> str:
    args = {"path": "restart.txt", "content": LINE, "mode": "append"}
    script = [{"tool_calls": [{"name": "txt_write", "args": args}]}, {"content": "done"}]
    config = {"model": "scripted", "model_options": {"script": script, "delay_ms": delay_ms}}
    body = {"name": "restart", "tools": ["txt:write"], "config": config}
    return str(httpx.post(f"{base}/agents", json=body, headers=headers).json()["agent_id"])


def written(data_dir: Path) -> str:
    return "".join(path.read_text() for path in (data_dir / "files").rglob("restart.txt"))


def wait_for(
    base: str, headers: dict[str, str], execution_id: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        run = httpx.get(f"{base}/executions/{execution_id}", headers=headers).json()
        if done(run) or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def test_a_killed_server_s_run_is_resumed_by_the_restarted_server(
    data_dir: Path, processes_started: Processes
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(processes_started, data_dir, port)
    headers = user(base)
    agent_id = appending_agent(base, headers, delay_ms=3000)
    body = {"input": "go", "parameters": {"wait": False, "executor": "inline"}}
    execution_id = httpx.post(f"{base}/agents/{agent_id}/execute", json=body,
                              headers=headers).json()["execution_id"]  # fmt: skip
    deadline = time.monotonic() + 60
    while written(data_dir) != LINE and time.monotonic() < deadline:
        time.sleep(0.01)
    assert written(data_dir) == LINE
    server.kill()  # right after the side effect; the embedded PostgreSQL keeps running
    server.communicate(timeout=10)

    again = serve(processes_started, data_dir, port)
    ended = wait_for(base, headers, execution_id, lambda r: r["status"] in ENDED)
    assert ended["status"] == "succeeded", ended
    assert ended["attempts"] == 2
    assert written(data_dir) == LINE  # the write was not repeated
    assert [step["type"] for step in ended["steps"]] == [
        "model_call", "tool_call", "tool_result", "model_call",
    ]  # fmt: skip
    again.send_signal(signal.SIGINT)
    again.communicate(timeout=60)


def test_sigterm_drains_streams_and_hands_runs_back(
    data_dir: Path, processes_started: Processes
) -> None:
    """SIGTERM with a run in flight and SSE streams open: the streams end, the server exits
    (its run handed back, recorded), and the next server resumes and finishes the run."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(processes_started, data_dir, port)
    headers = user(base)
    agent_id = appending_agent(base, headers, delay_ms=5000)
    body = {"input": "go", "parameters": {"wait": False, "executor": "inline"}}
    execution_id = httpx.post(f"{base}/agents/{agent_id}/execute", json=body,
                              headers=headers).json()["execution_id"]  # fmt: skip
    streams: list[str] = []
    connected = threading.Semaphore(0)

    def follow() -> None:
        url = f"{base}/executions/{execution_id}/events"
        with httpx.stream("GET", url, headers=headers, timeout=120) as response:
            chunks = response.iter_text()
            first = next(chunks)  # the stream is open on the server
            connected.release()
            streams.append(first + "".join(chunks))

    followers = [threading.Thread(target=follow) for _ in range(3)]
    for follower in followers:
        follower.start()
    for _ in followers:  # all three open before the signal (a loaded machine starts them late)
        assert connected.acquire(timeout=60), "an event stream never opened"
    running = wait_for(base, headers, execution_id, lambda r: r["status"] == "running")
    assert running["status"] == "running", running
    server.send_signal(signal.SIGTERM)
    _, stderr = server.communicate(timeout=60)
    for follower in followers:
        follower.join(30)
    assert len(streams) == 3, "an event stream did not end"
    assert all("event: status" in text for text in streams)
    assert "Traceback" not in stderr.decode()

    again = serve(processes_started, data_dir, port)
    ended = wait_for(base, headers, execution_id, lambda r: r["status"] in ENDED)
    assert ended["status"] == "succeeded", ended
    assert written(data_dir) == LINE
    events = httpx.get(f"{base}/executions/{execution_id}/events", headers=headers).text
    assert '"handed_back"' in events  # the first server recorded that it gave the run back
    again.send_signal(signal.SIGINT)
    again.communicate(timeout=60)
