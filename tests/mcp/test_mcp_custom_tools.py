"""An owner's `mcp` custom tools: MCP servers a user aims, reached only through the SSRF guard
(checked at every connection, pinned), over one kept-alive session per server and process.

No test here sends anything anywhere but loopback (`outbound`, autouse, fails the test on any
other connect or name lookup): refused targets are refused by the guard's decision alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pasar_core.services import Services
from starlette.testclient import TestClient

from tests.e2e import test_runs_web
from tests.e2e.runs import call, create_agent, error, result, run_tools, scripted
from tests.e2e.test_runs_web import Outbound
from tests.mcp.peers import http_peer_process
from tests.support.processes import Processes
from tests.support.servers import free_port

outbound = test_runs_web.outbound  # the autouse fixture that blocks non-loopback traffic

Headers = dict[str, str]


def mcp_tool(
    tool_id: str, url: str, tool: str, *, allow: list[str], effect: str, secret: bool = False
) -> dict[str, Any]:
    headers = {"Authorization": "Bearer {secrets.notes_key}"} if secret else {}
    return {
        "id": tool_id,
        "title": tool_id,
        "description": "A tool of an MCP server.",
        "input_schema": {"type": "object", "properties": {"note": {"type": "string"}}},
        "effect": effect,
        "timeout_s": 10,
        "network": {"allow_hosts": allow},
        "implementation": {
            "kind": "mcp", "url": url, "tool": tool, "headers": headers,
        },
    }  # fmt: skip


def register(client: TestClient, headers: Headers, definition: dict[str, Any]) -> None:
    response = client.post("/tools", json=definition, headers=headers)
    assert response.status_code == 201, response.text


def with_secret(client: TestClient, headers: Headers, agent_id: str) -> None:
    response = client.put(
        f"/agents/{agent_id}/secrets/notes_key", json={"value": "s3cr3t"}, headers=headers
    )
    assert response.status_code == 204, response.text


@pytest.fixture
def peer_url(processes_started: Processes) -> Iterator[str]:
    with http_peer_process(processes_started, free_port()) as url:
        yield url


def test_an_owners_mcp_tool_runs_over_one_guarded_session(
    peer_url: str, client: TestClient, make_user: Callable[..., Headers], outbound: Outbound
) -> None:
    headers = make_user()
    register(client, headers, mcp_tool(
        "notes:add", peer_url, "Add-Note", allow=["127.0.0.1"], effect="write", secret=True
    ))  # fmt: skip
    agent_id = create_agent(client, headers, ["notes:add"], scripted(
        call("notes:add", note="one"), call("notes:add", note="two"),
    ))  # fmt: skip
    with_secret(client, headers, agent_id)
    first = [s for s in _run(client, headers, agent_id) if s["type"] == "tool_result"]
    second = [s for s in _run(client, headers, agent_id) if s["type"] == "tool_result"]
    counts = [result(step)["notes"] for step in first + second]
    assert counts == [1, 2, 3, 4]  # one server process, one session, kept between runs
    services: Services = client.app_state["services"]
    assert services.tool_overlays is not None
    assert services.tool_overlays.mcp is not None
    (connection,) = services.tool_overlays.mcp.connections.values()
    assert connection.opened == 1


def _run(client: TestClient, headers: Headers, agent_id: str) -> list[dict[str, Any]]:
    response = client.post(
        f"/agents/{agent_id}/execute",
        json={"input": "go", "parameters": {"wait": True, "timeout_s": 60}},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded", response.json()
    steps: list[dict[str, Any]] = response.json()["steps"]
    return steps


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/mcp",  # cloud metadata
        "http://10.0.0.5:8080/mcp",  # private
        "http://[fd00::1]/mcp",  # unique local IPv6
        "http://0xa9fea9fe/mcp",  # metadata, spelled as one hex number
        "http://[::ffff:169.254.169.254]/mcp",  # metadata, IPv4-mapped
    ],
)
def test_private_and_metadata_targets_are_refused_by_the_guard(
    client: TestClient, make_user: Callable[..., Headers], url: str, outbound: Outbound
) -> None:
    headers = make_user()
    register(client, headers, mcp_tool("probe:add", url, "Add-Note", allow=[], effect="read"))
    steps = run_tools(client, headers, ["probe:add"], call("probe:add", note="x"))
    assert error(steps[0]).startswith("WEB_TARGET_REFUSED:"), steps[0]
    assert outbound.attempts == []  # decided without trying to connect (loopback: the database)


def test_a_loopback_server_that_is_not_allow_listed_is_refused(
    peer_url: str, client: TestClient, make_user: Callable[..., Headers], outbound: Outbound
) -> None:
    """The server is there and answers; the guard alone says no."""
    headers = make_user()
    register(client, headers, mcp_tool("local:add", peer_url, "Add-Note", allow=[], effect="read"))
    before = len(outbound.connects)  # the fixture's own wait for the peer to listen
    steps = run_tools(client, headers, ["local:add"], call("local:add", note="x"))
    assert error(steps[0]).startswith("WEB_TARGET_REFUSED:")
    port = int(peer_url.rsplit(":", 1)[1].split("/")[0])
    assert ("127.0.0.1", port) not in outbound.connects[before:]


@pytest.mark.parametrize(
    ("implementation", "path"),
    [
        ({"url": "http://127.0.0.1:1/{tool}", "tool": "x"}, "/implementation/url"),
        ({"url": "ftp://127.0.0.1/mcp", "tool": "x"}, "/implementation/url"),
        ({"url": "http://127.0.0.1:1/mcp", "tool": "x", "headers": {"Host": "evil"}},
         "/implementation/headers/Host"),
    ],
)  # fmt: skip
def test_a_bad_mcp_definition_is_refused_at_registration(
    client: TestClient, make_user: Callable[..., Headers], implementation: dict[str, Any],
    path: str,
) -> None:  # fmt: skip
    definition = mcp_tool("bad:tool", "http://x/", "x", allow=[], effect="read")
    definition["implementation"] = {"kind": "mcp", **implementation}
    response = client.post("/tools", json=definition, headers=make_user())
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["errors"][0]["path"] == path


@pytest.mark.parametrize("tool_id", ["mcp:x", "mcp_weather:forecast"])
def test_the_namespaces_of_the_operators_mcp_servers_are_never_handed_out(
    client: TestClient, make_user: Callable[..., Headers], tool_id: str
) -> None:
    definition = mcp_tool(tool_id, "https://mcp.example.org/mcp", "x", allow=[], effect="read")
    response = client.post("/tools", json=definition, headers=make_user())
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "TOOL_DEFINITION_INVALID"
