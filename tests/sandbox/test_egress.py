"""The sandbox egress proxy: a python tool with allow_hosts reaches those hosts and nothing else.

Containers keep `--network none`; the only way out is pasar's relay on the container's loopback,
carried over a `docker exec` stream to the worker's egress proxy, which applies the tool's allow
list and pasar's SSRF guard and connects to the checked address. Every target here is on this
machine; private and metadata targets are refused by the guard's decision alone (the proxy's
connector in those tests fails the test if it is ever called with an address that is not
loopback).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from pasar_core.net.guard import Pinned
from pasar_core.sandbox.allow_hosts import opened_hosts
from pasar_core.sandbox.client import SandboxClient
from pasar_core.sandbox.egress import EgressProxy, Streams, connect_pinned
from pasar_core.sandbox.limits import NetworkPolicy
from pasar_core.sandbox.workloads import PythonTool
from pasar_core.testing import PostgresForTests
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.e2e.runs import call, result, run_tools
from tests.sandbox.conftest import ContainerAudit, MakeSandbox, hardening_problems
from tests.sandbox.test_containment_network import (
    DNS_PROBE,
    INTERFACES_PROBE,
    TCP_PROBE,
    UDP_PROBE,
    reached,
    run_on_host,
    wait_for,
)
from tests.sandbox.test_custom_tools_runs import total_tool
from tests.support.listeners import Listeners, host_addresses, listeners
from tests.support.redis_server import redis_server
from tests.support.servers import serve_in_thread

FETCH = """
import json, urllib.error, urllib.request
def run(args):
    results = {}
    for url in args["urls"]:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                results[url] = {"status": response.status, "body": json.loads(response.read())}
        except urllib.error.HTTPError as error:
            results[url] = {"status": error.code, "body": error.read().decode()}
        except OSError as error:
            results[url] = {"error": type(error).__name__}
    return results
"""

CONNECT = """
import os, socket
def head(sock):
    data = b""
    while b"\\r\\n\\r\\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data
def rest(sock):
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data
def run(args):
    host, port = os.environ["HTTPS_PROXY"].removeprefix("http://").rsplit(":", 1)
    results = {}
    for target in args["targets"]:
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(f"CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n".encode())
            answer = head(sock)
            status = answer.split(b" ", 2)[1].decode() if answer else "closed"
            if status == "200":
                sock.sendall(b"GET /tunnel HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n")
            answer += rest(sock)
            results[target] = {"status": status, "answer": answer.decode("latin-1")[-400:]}
    return results
"""


def api_app(seen: list[dict[str, Any]]) -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        seen.append({"path": request.url.path, "host": request.headers.get("host")})
        return JSONResponse({"path": request.url.path, "host": request.headers.get("host"),
                             "query": request.url.query})  # fmt: skip

    return Starlette(routes=[Route("/{path:path}", echo)])


@pytest.fixture
def api() -> Iterator[tuple[str, int, list[dict[str, Any]]]]:
    """A loopback API the tools may be allowed to reach: (base URL, port, requests seen)."""
    seen: list[dict[str, Any]] = []
    with serve_in_thread(api_app(seen)) as base:
        yield base, int(base.rsplit(":", 1)[1]), seen


@pytest.fixture
def listening() -> Iterator[Listeners]:
    with listeners() as state:
        yield state


def egress_tool(source: str, allow: Sequence[str], opened: Sequence[str] = (), name: str = "a"
                ) -> PythonTool:  # fmt: skip
    return PythonTool(f"probe:egress_{name}", 1, source,
                      network=NetworkPolicy(allow_hosts=tuple(allow), opened_hosts=tuple(opened)))  # fmt: skip


def test_a_tool_reaches_its_allowed_host_through_the_proxy(
    sandbox: SandboxClient, container_audit: ContainerAudit, api: Any
) -> None:
    base, port, seen = api
    allowed = f"127.0.0.1:{port}"  # opened by the operator, as the test deployment does
    fetch = egress_tool(FETCH, [allowed], [allowed])

    first = sandbox.call_python(fetch, {"urls": [f"{base}/hello?x=1"]})
    assert first.value == {f"{base}/hello?x=1": {"status": 200, "body": {
        "path": "/hello", "host": allowed, "query": "x=1"}}}  # fmt: skip
    again = sandbox.call_python(fetch, {"urls": [f"{base}/again"]})
    assert (again.cold, again.container_id) == (False, first.container_id)  # the relay stays
    assert again.value[f"{base}/again"]["status"] == 200

    tunnel = sandbox.call_python(egress_tool(CONNECT, [allowed], [allowed]), {"targets": [allowed]})
    assert tunnel.value[allowed]["status"] == "200"
    assert '"path":"/tunnel"' in tunnel.value[allowed]["answer"]
    assert [request["path"] for request in seen] == ["/hello", "/again", "/tunnel"]

    inspected = container_audit.inspected[first.container_id]
    assert inspected["HostConfig"]["NetworkMode"] == "none"
    assert "HTTP_PROXY=http://127.0.0.1:3128" in inspected["Config"]["Env"]
    assert hardening_problems(inspected) == []


def test_hosts_outside_the_allow_list_are_refused(
    sandbox: SandboxClient, api: Any, listening: Listeners, pasar_postgres: PostgresForTests
) -> None:
    _base, port, seen = api
    allowed = f"127.0.0.1:{port}"
    postgres = make_url(pasar_postgres.admin_url)
    with redis_server() as redis_url:
        redis_port = make_url(redis_url).port
        others = [f"127.0.0.1:{listening.tcp_port}", f"127.0.0.1:{redis_port}",
                  f"127.0.0.1:{postgres.port}", f"localhost:{port}", "127.0.0.2:80"]  # fmt: skip
        others += [f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in host_addresses()
                   if a != "127.0.0.1"]  # fmt: skip
        connects = sandbox.call_python(egress_tool(CONNECT, [allowed], [allowed]),
                                       {"targets": others}).value  # fmt: skip
        fetches = sandbox.call_python(egress_tool(FETCH, [allowed], [allowed]),
                                      {"urls": [f"http://{t}/" for t in others]}).value  # fmt: skip

    for target in others:
        assert connects[target]["status"] == "403", (target, connects[target])
        assert "not in this tool's network.allow_hosts" in connects[target]["answer"]
        refused = fetches[f"http://{target}/"]
        assert refused["status"] == 403, (target, refused)
    assert listening.tcp_peers == []
    assert seen == []


def test_the_container_has_no_other_way_out(
    sandbox: SandboxClient, api: Any, listening: Listeners
) -> None:
    """With allow_hosts, direct TCP, UDP and DNS still reach nothing: only lo, no route."""
    _base, port, seen = api
    allowed = [f"127.0.0.1:{port}"]
    targets = [[address, listening.tcp_port] for address in host_addresses()]
    targets += [[address, port] for address in host_addresses() if address != "127.0.0.1"]
    assert set(run_on_host(TCP_PROBE, {"targets": targets[:1]}).values()) == {"connected"}
    wait_for(lambda: len(listening.tcp_peers) == 1)
    listening.reset()

    tcp = sandbox.call_python(egress_tool(TCP_PROBE, allowed, allowed), {"targets": targets})
    udp_targets = [[a, listening.udp_port] for a in host_addresses()
                   if not ipaddress.ip_address(a).is_loopback]  # fmt: skip
    udp = sandbox.call_python(egress_tool(UDP_PROBE, allowed, allowed), {"targets": udp_targets})
    dns = sandbox.call_python(egress_tool(DNS_PROBE, allowed, allowed), {"name": "pasar.invalid"})
    interfaces = sandbox.call_python(egress_tool(INTERFACES_PROBE, allowed, allowed), {})

    assert reached(tcp.value) == {}
    assert reached(udp.value) == {}
    assert dns.value == {"servers": ["127.0.0.1"], "lookup": "gaierror"}
    assert interfaces.value == {"interfaces": ["lo"], "ipv4_routes": [], "ipv6_routes": []}
    assert listening.tcp_peers == []
    assert listening.udp_peers == []
    assert seen == []


class ScriptedResolver:
    """Answers from a table, a list per name consumed one lookup at a time (the last repeats)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        queue = self.answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def test_the_guard_refuses_private_and_metadata_targets_by_its_decision_alone(
    make_sandbox: MakeSandbox, api: Any
) -> None:
    _base, port, seen = api
    dialled: list[tuple[str, ...]] = []

    async def loopback_only(pinned: Pinned) -> Streams:
        dialled.append(tuple(str(address) for address in pinned.addresses))
        assert all(address.is_loopback for address in pinned.addresses), pinned
        return await connect_pinned(pinned)

    resolver = ScriptedResolver({
        "intranet.example.com": [["10.0.0.7"]],
        "metadata-alias.example.com": [["169.254.169.254"]],
        "mixed.example.com": [["127.0.0.1", "192.168.1.9"]],
        "rebind.example.com": [["127.0.0.1"], ["169.254.169.254"]],
    })  # fmt: skip
    proxy = EgressProxy(resolver=resolver, connector=loopback_only)
    try:
        check_refusals_and_pinning(make_sandbox(egress=proxy), port, seen, dialled, resolver)
    finally:
        proxy.close()


def check_refusals_and_pinning(
    sandbox: SandboxClient,
    port: int,
    seen: list[dict[str, Any]],
    dialled: list[tuple[str, ...]],
    resolver: ScriptedResolver,
) -> None:
    allow = ["169.254.169.254", "metadata.google.internal", "10.1.2.3:8080", "[fd00::1]:8080",
             "intranet.example.com", "metadata-alias.example.com", f"mixed.example.com:{port}",
             f"rebind.example.com:{port}", "100.100.100.200", "[::ffff:169.254.169.254]"]  # fmt: skip
    # The operator opened some of them to private addresses: metadata stays refused anyway.
    opened = ["metadata-alias.example.com", f"rebind.example.com:{port}", "169.254.169.254"]
    targets = ["169.254.169.254:80", "metadata.google.internal:80", "10.1.2.3:8080",
               "[fd00::1]:8080", "intranet.example.com:443", "metadata-alias.example.com:80",
               f"mixed.example.com:{port}", "100.100.100.200:80",
               "[::ffff:169.254.169.254]:80"]  # fmt: skip
    tool = egress_tool(CONNECT, allow, opened)
    refused = sandbox.call_python(tool, {"targets": targets}).value
    for target in targets:
        assert refused[target]["status"] == "403", (target, refused[target])
    assert dialled == []

    # A name is resolved once per connection and the connection pinned to that answer: a
    # resolver that answers loopback, then metadata, cannot move a connection.
    rebind = f"rebind.example.com:{port}"
    first = sandbox.call_python(egress_tool(FETCH, allow, opened), {"urls": [f"http://{rebind}/"]})
    assert first.value[f"http://{rebind}/"]["body"]["host"] == rebind
    assert dialled == [("127.0.0.1",)]
    second = sandbox.call_python(egress_tool(FETCH, allow, opened), {"urls": [f"http://{rebind}/"]})
    assert second.value[f"http://{rebind}/"]["status"] == 403
    assert dialled == [("127.0.0.1",)]
    assert resolver.lookups.count("rebind.example.com") == 2
    assert [request["host"] for request in seen] == [rebind]


def test_one_tools_container_cannot_use_another_tools_allow_list(
    sandbox: SandboxClient, api: Any, listening: Listeners
) -> None:
    base, port, seen = api
    other = f"127.0.0.1:{listening.tcp_port}"
    mine = sandbox.call_python(
        egress_tool(FETCH, [f"127.0.0.1:{port}"], [f"127.0.0.1:{port}"], name="mine"),
        {"urls": [f"{base}/mine"]},
    )
    theirs = sandbox.call_python(
        egress_tool(FETCH, [other], [other], name="theirs"), {"urls": [f"{base}/theirs"]}
    )
    assert mine.value[f"{base}/mine"]["status"] == 200
    assert theirs.value[f"{base}/theirs"]["status"] == 403
    assert theirs.container_id != mine.container_id
    assert [request["path"] for request in seen] == ["/mine"]


def test_a_tool_without_allow_hosts_has_no_proxy(
    sandbox: SandboxClient, container_audit: ContainerAudit, api: Any
) -> None:
    _base, port, seen = api
    plain = PythonTool("probe:no_egress", 1, TCP_PROBE)
    result = sandbox.call_python(plain, {"targets": [["127.0.0.1", 3128], ["127.0.0.1", port]]})
    assert reached(result.value) == {}
    inspected = container_audit.inspected[result.container_id]
    assert inspected["HostConfig"]["NetworkMode"] == "none"
    assert not [item for item in inspected["Config"]["Env"] if "PROXY" in item.upper()]
    assert seen == []


def test_a_registered_tool_with_allow_hosts_reaches_its_api_in_a_run(
    tools_client: TestClient, tools_user: Any, api: Any
) -> None:
    """The whole path: REST registration, an agent run (scripted model), the sandbox queue, a
    real rq sandbox worker, the relay and the proxy; the operator opened 127.0.0.1 (as the
    test deployment's PASAR_ALLOW_PRIVATE_HOSTS does)."""
    base, port, seen = api
    source = FETCH.replace("def run(args):", "def fetch(args):") + (
        "\ndef run(args):\n    return fetch({'urls': [args['url']]})[args['url']]\n"
    )
    definition = total_tool("acme:rates", source, network={"allow_hosts": [f"127.0.0.1:{port}"]})
    definition["input_schema"] = {"type": "object", "properties": {"url": {"type": "string"}},
                                  "required": ["url"]}  # fmt: skip
    definition["output_schema"] = {"type": "object", "required": ["status"]}
    headers = tools_user()
    created = tools_client.post("/tools", json=definition, headers=headers)
    assert created.status_code == 201, created.text

    allowed, other = run_tools(
        tools_client, headers, ["acme:rates"],
        call("acme:rates", url=f"{base}/rates/EUR"), call("acme:rates", url="http://127.0.0.1:9/"),
    )  # fmt: skip
    assert result(allowed) == {"status": 200, "body": {"path": "/rates/EUR",
                               "host": f"127.0.0.1:{port}", "query": ""}}  # fmt: skip
    assert result(other)["status"] == 403
    assert [request["path"] for request in seen] == ["/rates/EUR"]


def test_only_the_entries_the_operator_opens_now_may_reach_private_addresses() -> None:
    entries = ("api.example.com", "127.0.0.1:8080", "localhost", "[::1]:9000", "10.0.0.5")
    assert opened_hosts(entries, ("127.0.0.1", "[::1]:9000", "10.0.0.5:80")) == (
        "127.0.0.1:8080", "[::1]:9000"
    )  # fmt: skip
    assert opened_hosts(entries, ()) == ()
    assert opened_hosts(entries, None) == ()
