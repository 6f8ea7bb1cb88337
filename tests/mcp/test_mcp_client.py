"""pasar as an MCP client: an operator's MCP servers (stdio, and streamable HTTP on loopback)
serve their tools as a catalogue family that agent runs call through the core, over one
kept-alive session per server; servers that die, break their schemas or answer too much."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from pasar_core.errors import StartupError
from pasar_core.mcp.config import McpServerConfig, parse_mcp_servers
from pasar_core.services import Services
from pasar_core.settings import Settings
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.runs import call, error, result, run_tools
from tests.mcp.peers import http_peer_process, stdio_peer
from tests.support.processes import Processes
from tests.support.servers import free_port

Headers = dict[str, str]


MAX_RESULT_BYTES = 100_000


def served(settings: Settings, *servers: McpServerConfig) -> TestClient:
    app = create_app(
        settings.with_overrides(mcp_servers=servers, max_tool_result_bytes=MAX_RESULT_BYTES)
    )
    return TestClient(app, raise_server_exceptions=False)


def user(client: TestClient) -> Headers:
    credentials = {"email": "mcp@example.com", "password": "correct horse battery"}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def opened(client: TestClient, server: str = "peer") -> int:
    services: Services = client.app_state["services"]
    assert services.mcp is not None
    return services.mcp.connections[server].opened


@pytest.fixture
def stdio_client(pasar_settings: Settings) -> Iterator[TestClient]:
    with served(pasar_settings, stdio_peer()) as client:
        yield client


def test_the_servers_tools_are_a_catalogue_family_with_their_schemas(
    stdio_client: TestClient,
) -> None:
    headers = user(stdio_client)
    listed = stdio_client.get("/tools", params={"family": "mcp_peer"}, headers=headers)
    assert listed.status_code == 200, listed.text
    tools = {tool["id"]: tool for tool in listed.json()["tools"]}
    # `broken`'s input schema is not JSON Schema: left out, the others served.
    assert sorted(tools) == [
        "mcp_peer:add_note", "mcp_peer:die", "mcp_peer:echo", "mcp_peer:fail", "mcp_peer:huge",
        "mcp_peer:liar", "mcp_peer:slow",
    ]  # fmt: skip
    assert tools["mcp_peer:echo"]["effect"] == "read"  # readOnlyHint
    assert tools["mcp_peer:add_note"]["effect"] == "write"  # no hint: a write
    assert tools["mcp_peer:die"]["effect"] == "write"
    assert tools["mcp_peer:echo"]["input_schema"]["required"] == ["text"]
    assert tools["mcp_peer:add_note"]["output_schema"]["required"] == ["notes", "pid"]
    assert tools["mcp_peer:echo"]["source"] == "mcp"


def test_an_agent_run_calls_mcp_tools_over_one_kept_session(stdio_client: TestClient) -> None:
    headers = user(stdio_client)
    tools = ["mcp_peer:echo", "mcp_peer:add_note"]
    first = run_tools(
        stdio_client, headers, tools,
        call("mcp_peer:echo", text="harbour"),
        call("mcp_peer:add_note", note="one"),
        call("mcp_peer:add_note", note="two"),
    )  # fmt: skip
    assert result(first[0]) == {"content": [{"type": "text", "text": "echo: harbour"}]}
    assert result(first[1])["notes"] == 1
    assert result(first[2])["notes"] == 2
    second = run_tools(stdio_client, headers, tools, call("mcp_peer:add_note", note="three"))
    # The same server process kept its notes: one session for both runs, not one per call.
    assert result(second[0]) == {"notes": 3, "pid": result(first[1])["pid"]}
    assert opened(stdio_client) == 1


def test_the_core_validates_input_before_the_server_sees_it(stdio_client: TestClient) -> None:
    headers = user(stdio_client)
    steps = run_tools(
        stdio_client, headers, ["mcp_peer:echo"], call("mcp_peer:echo", words="no text")
    )
    assert error(steps[0]).startswith("TOOL_INPUT_INVALID:")


def test_a_tool_error_a_huge_or_a_malformed_result_reach_the_model_as_errors(
    stdio_client: TestClient,
) -> None:
    headers = user(stdio_client)
    steps = run_tools(
        stdio_client, headers, ["mcp_peer:fail", "mcp_peer:huge", "mcp_peer:liar", "mcp_peer:echo"],
        call("mcp_peer:fail"),
        call("mcp_peer:huge", size=2 * MAX_RESULT_BYTES),
        call("mcp_peer:liar"),
        call("mcp_peer:echo", text="still here"),
    )  # fmt: skip
    assert error(steps[0]).startswith("MCP_TOOL_ERROR:")
    assert "the printer is on fire" in error(steps[0])
    assert error(steps[1]).startswith("TOOL_RESULT_TOO_LARGE:")
    assert error(steps[2]).startswith("MCP_TOOL_ERROR:")  # refused before the model reads it
    assert "malformed answer" in error(steps[2])
    assert result(steps[3])["content"][0]["text"] == "echo: still here"
    assert opened(stdio_client) == 1


def test_a_call_past_its_timeout_ends_and_the_session_goes_on(pasar_settings: Settings) -> None:
    config = dataclasses.replace(stdio_peer(), timeout_s=1)
    with served(pasar_settings, config) as client:
        headers = user(client)
        steps = run_tools(
            client, headers, ["mcp_peer:slow", "mcp_peer:echo"],
            call("mcp_peer:slow", seconds=3600),
            call("mcp_peer:echo", text="awake"),
        )  # fmt: skip
        assert error(steps[0]).startswith("TOOL_TIMEOUT:")
        assert result(steps[1])["content"][0]["text"] == "echo: awake"
        assert opened(client) == 1


def test_a_stdio_server_that_dies_mid_call_is_restarted_for_the_next_call(
    stdio_client: TestClient,
) -> None:
    headers = user(stdio_client)
    steps = run_tools(
        stdio_client, headers, ["mcp_peer:add_note", "mcp_peer:die"],
        call("mcp_peer:add_note", note="before"),
        call("mcp_peer:die"),
        call("mcp_peer:add_note", note="after"),
    )  # fmt: skip
    before = result(steps[0])
    # A write the server may have run is never sent twice: the model is told.
    assert error(steps[1]).startswith("MCP_SERVER_UNAVAILABLE:")
    after = result(steps[2])
    assert after["notes"] == 1  # a new server process
    assert after["pid"] != before["pid"]
    assert opened(stdio_client) == 2


def test_an_http_server_that_dies_is_refused_clearly_until_it_is_back(
    pasar_settings: Settings, processes_started: Processes
) -> None:
    port = free_port()
    with http_peer_process(processes_started, port) as url:
        config = McpServerConfig(name="peer", url=url)
        with served(pasar_settings, config) as client:
            headers = user(client)
            tools = ["mcp_peer:add_note", "mcp_peer:die", "mcp_peer:echo"]
            steps = run_tools(
                client, headers, tools,
                call("mcp_peer:add_note", note="one"),
                call("mcp_peer:die"),
                call("mcp_peer:echo", text="anyone?"),
            )  # fmt: skip
            assert result(steps[0])["notes"] == 1
            assert error(steps[1]).startswith("MCP_SERVER_UNAVAILABLE:")
            assert error(steps[2]).startswith("MCP_SERVER_UNAVAILABLE:")
            with http_peer_process(processes_started, port):
                steps = run_tools(client, headers, tools, call("mcp_peer:add_note", note="two"))
                assert result(steps[0])["notes"] == 1  # the new process: a new session
                assert opened(client) == 2


def test_an_unreachable_server_refuses_the_start(pasar_settings: Settings) -> None:
    config = McpServerConfig(name="away", url=f"http://127.0.0.1:{free_port()}/mcp/")
    with (
        pytest.raises(StartupError, match="MCP server 'away' is unavailable"),
        served(pasar_settings, config),
    ):
        pass


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("[]", "must be a JSON object"),
        ("{nope", "is not JSON"),
        ('{"Bad-Name": {"url": "http://127.0.0.1:1/"}}', "must be lowercase"),
        ('{"a": {}}', "give either url or command"),
        ('{"a": {"url": "http://x/", "command": "y"}}', "give either url or command"),
        ('{"a": {"url": "file:///etc/passwd"}}', "url"),
        ('{"a": {"command": "x", "shell": true}}', "shell"),
        ('{"a": {"command": "x", "timeout_s": 0}}', "timeout_s"),
    ],
)
def test_a_bad_configuration_is_refused_at_start_up(raw: str, problem: str) -> None:
    with pytest.raises(StartupError, match=problem):
        parse_mcp_servers(raw)


def test_the_configuration_reads_both_transports() -> None:
    servers = parse_mcp_servers(
        '{"notes": {"command": "notes-mcp", "args": ["--quiet"], "env": {"K": "v"}},'
        ' "weather": {"url": "https://mcp.example.org/mcp", "headers": {"Authorization": "s3"}}}'
    )
    notes, weather = servers
    assert (notes.name, notes.command, notes.args, dict(notes.env)) == (
        "notes", "notes-mcp", ("--quiet",), {"K": "v"}
    )  # fmt: skip
    assert (weather.transport, weather.family_id) == ("http", "mcp_weather")
    assert "s3" not in repr(weather)  # header values (credentials) are never printed


def test_pasar_tools_list_shows_the_mcp_families() -> None:
    from click.testing import CliRunner

    from pasar.cli import main
    from tests.mcp.peers import ROOT

    peer = stdio_peer()
    servers = {"peer": {"command": peer.command, "args": list(peer.args), "cwd": str(ROOT)}}
    listed = CliRunner().invoke(
        main, ["tools", "list", "--json", "--family", "mcp_peer"],
        env={"PASAR_MCP_SERVERS": json.dumps(servers)},
    )  # fmt: skip
    assert listed.exit_code == 0, listed.output
    tools = {tool["id"]: tool for tool in json.loads(listed.output)}
    assert tools["mcp_peer:echo"]["effect"] == "read"
    assert tools["mcp_peer:add_note"]["effect"] == "write"
