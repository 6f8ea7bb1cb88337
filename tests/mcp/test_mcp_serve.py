"""`pasar serve` (granian, the default) as a real process: an MCP client runs an agent at /mcp."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from mcp import ClientSession
from mcp_types import TextContent
from pasar_core.testing import TEST_PASSWORD

from tests.e2e.runs import scripted
from tests.e2e.test_serve import data_dir, serve, stop, wait_until_ready
from tests.mcp.test_mcp_server import _with_session
from tests.support.processes import Processes
from tests.support.servers import free_port

__all__ = ["data_dir"]  # the fixture, used by the test below


def test_an_mcp_client_runs_an_agent_on_pasar_serve(
    data_dir: Path, processes_started: Processes
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = serve(processes_started, data_dir, port)
    try:
        wait_until_ready(base, process)
        credentials = {"email": "mcp-serve@example.com", "password": TEST_PASSWORD}
        assert httpx.post(f"{base}/auth/signup", json=credentials).status_code == 201
        token = httpx.post(f"{base}/auth/token", json=credentials).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        key = httpx.post(f"{base}/api-keys", json={"name": "mcp"}, headers=headers).json()["key"]
        body = {"name": "echo", "tools": [], "config": scripted({"content": "pong"})}
        assert httpx.post(f"{base}/agents", json=body, headers=headers).status_code == 201

        async def action(session: ClientSession) -> list[str]:
            tools = (await session.list_tools()).tools
            result = await session.call_tool(tools[0].name, {"input": "ping"})
            return [block.text for block in result.content if isinstance(block, TextContent)]

        assert asyncio.run(_with_session(base, key, action)) == ["pong"]
    finally:
        stop(process)
