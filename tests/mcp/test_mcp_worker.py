"""A `pasar worker` (rq executor, real Redis, a real worker process) connects the operator's MCP
servers itself: its runs call MCP tools over the worker's own session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pasar_core.settings import Settings
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.runs import call, create_agent, result, scripted
from tests.mcp.peers import ROOT, stdio_peer
from tests.support.processes import Processes
from tests.support.redis_server import redis_server


@pytest.fixture
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def peer_json() -> str:
    peer = stdio_peer()
    return json.dumps(
        {
            peer.name: {
                "command": peer.command,
                "args": list(peer.args),
                "env": dict(peer.env),
                "cwd": str(ROOT),
            }
        }
    )


def finished(client: TestClient, headers: dict[str, str], execution_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        run: dict[str, Any] = client.get(f"/executions/{execution_id}", headers=headers).json()
        if run["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def run_on(client: TestClient, headers: dict[str, str], agent_id: str, executor: str) -> Any:
    body = {"input": "go", "parameters": {"wait": False, "executor": executor}}
    started = client.post(f"/agents/{agent_id}/execute", json=body, headers=headers)
    assert started.status_code in (200, 202), started.text
    run = finished(client, headers, started.json()["execution_id"])
    assert run["status"] == "succeeded", run
    (step,) = [step for step in run["steps"] if step["type"] == "tool_result"]
    return result(step)


def test_a_worker_calls_mcp_tools_over_its_own_session(
    pasar_settings: Settings, redis_url: str, processes_started: Processes
) -> None:
    settings = pasar_settings.with_overrides(redis_url=redis_url, mcp_servers=(stdio_peer(),))
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": redis_url,
        "PASAR_DATA_DIR": str(settings.data_dir),
        "PASAR_SECRET_KEY": settings.secret_key or "",
        "PASAR_MCP_SERVERS": peer_json(),
    }
    with TestClient(create_app(settings)) as client:
        processes_started.start(
            [sys.executable, "-m", "pasar", "worker"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        credentials = {"email": "mcp-rq@example.com", "password": "correct horse battery"}
        client.post("/auth/signup", json=credentials)
        token = client.post("/auth/token", json=credentials).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        config = scripted(call("mcp_peer:add_note", note="n"))
        agent_id = create_agent(client, headers, ["mcp_peer:add_note"], config)
        here = run_on(client, headers, agent_id, "inline")
        there = run_on(client, headers, agent_id, "rq")
        assert there["notes"] == 1  # another server process: the worker's own session
        assert there["pid"] != here["pid"]
