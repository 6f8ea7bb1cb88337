"""`pasar serve` as a real process on the embedded default: REST and GraphQL over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
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


def wait_until_ready(base: str, process: subprocess.Popen[bytes], timeout_s: float = 180) -> None:
    # A bound, not a measurement: a cold start with two workers took over 60 s on a loaded
    # machine.
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


def serve(processes: Processes, data_dir: Path, port: int, *flags: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PASAR_DEV")}
    env |= {"PASAR_DATA_DIR": str(data_dir), "PASAR_PORT": str(port)}
    return processes.start(
        [sys.executable, "-m", "pasar", "serve", "--log-level", "warning", *flags],
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
        # the dashboard and its files, from the served process itself (no other origin)
        dashboard = httpx.get(f"{base}/")
        assert dashboard.headers["content-type"].startswith("text/html")
        script = re.search(r'src="(/static/[^"]+\.js)"', dashboard.text)
        assert script is not None, dashboard.text
        module = httpx.get(base + script.group(1))
        assert module.status_code == 200
        assert module.headers["cache-control"] == "public, max-age=31536000, immutable"
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


def declare_huge_body(port: int, path: str) -> tuple[str, dict[str, str], bytes, int]:
    """Announce a 60 MB body with `Expect: 100-continue`, as curl does, and send it only if the
    server asks for it: (status line, headers, body, body bytes sent)."""
    size = 60 * 1024 * 1024
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\nExpect: 100-continue\r\n\r\n"
    )
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        raw = b""
        while b"\r\n\r\n" not in raw and (chunk := sock.recv(65536)):
            raw += chunk
        if raw.startswith(b"HTTP/1.1 100"):
            raw = raw.partition(b"\r\n\r\n")[2]
            with contextlib.suppress(OSError):  # the server may close while the body flows
                while sent < size:
                    sent += sock.send(b"a" * 65536)
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):  # the server closes after its answer
                raw += chunk
    status, _, rest = raw.partition(b"\r\n")
    header_block, _, body = rest.partition(b"\r\n\r\n")
    lines = (line.decode().partition(":") for line in header_block.split(b"\r\n"))
    headers = {name.strip().lower(): value.strip() for name, _, value in lines}
    return status.decode(), headers, body, sent


def test_serve_refuses_what_hurts_it_and_dev_mode_opens_up(
    data_dir: Path, processes_started: Processes
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    introspection = {"query": "{ __schema { queryType { name } } }"}
    process = serve(processes_started, data_dir, port)
    try:
        wait_until_ready(base, process)
        for path, error_of in (
            ("/graphql", lambda body: body["errors"][0]["extensions"]),
            ("/auth/signup", lambda body: body["error"]),
        ):
            status, headers, body, sent = declare_huge_body(port, path)
            # The reason phrase is the HTTP server's (granian: "Payload Too Large").
            assert status.startswith("HTTP/1.1 413 "), (path, status)
            assert headers["connection"] == "close"
            assert error_of(json.loads(body))["code"] == "PAYLOAD_TOO_LARGE"
            assert sent == 0  # refused from the headers: no "100 Continue", no body read
        deep = b"[" * 5000 + b"]" * 5000
        json_headers = {"Content-Type": "application/json"}
        rest = httpx.post(f"{base}/auth/signup", content=deep, headers=json_headers)
        assert (rest.status_code, rest.json()["error"]["code"]) == (400, "BAD_REQUEST")
        bare = httpx.post(f"{base}/graphql", content=b'"x"', headers=json_headers)
        assert bare.status_code == 400
        assert bare.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        refused = httpx.post(f"{base}/graphql", json=introspection).json()
        assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        typo = httpx.post(f"{base}/graphql", json={"query": "{ toolz { id } }"}).json()
        assert "Did you mean" not in str(typo)
    finally:
        stderr = stop(process)
    assert "Traceback" not in stderr

    dev = serve(processes_started, data_dir, port, "--dev")
    try:
        wait_until_ready(base, dev)
        opened = httpx.post(f"{base}/graphql", json=introspection).json()
        assert opened == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
        typo = httpx.post(f"{base}/graphql", json={"query": "{ toolz { id } }"}).json()
        assert "Did you mean 'tool' or 'tools'?" in typo["errors"][0]["message"]
    finally:
        stderr = stop(dev)
    assert "Traceback" not in stderr
