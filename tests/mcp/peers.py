"""The test MCP peer as an operator would configure it: stdio, or HTTP in its own process."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from pasar_core.mcp.config import McpServerConfig

from tests.support.processes import SESSION_MARKER, Processes

ROOT = Path(__file__).resolve().parents[2]


def stdio_peer(name: str = "peer") -> McpServerConfig:
    """The peer as a stdio server; it carries the session's marker, so one that outlives the
    tests fails the session (tests/support/processes)."""
    marker = {SESSION_MARKER: os.environ[SESSION_MARKER]} if SESSION_MARKER in os.environ else {}
    return McpServerConfig(
        name=name, command=sys.executable, args=("-m", "tests.support.mcp_peer"),
        env=marker, cwd=str(ROOT),
    )  # fmt: skip


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the MCP peer did not listen on {port}")


@contextlib.contextmanager
def http_peer_process(processes: Processes, port: int) -> Iterator[str]:
    """The peer over streamable HTTP in a process of its own (its `die` tool ends it)."""
    process = processes.start(
        [sys.executable, "-m", "tests.support.mcp_peer", "http", str(port)], cwd=ROOT
    )
    wait_listening(port)
    try:
        yield f"http://127.0.0.1:{port}/mcp/"
    finally:
        process.kill()
        process.wait(10)
