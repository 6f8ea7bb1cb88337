"""Network containment: sandboxed code reaches nothing, not even this host.

Every target is an address of this machine (its interfaces, the Docker bridge's gateway, the
test's own Redis and PostgreSQL), so nothing can leave it even if containment failed. Each probe
first runs in the test process as a control, which must reach every target; the same source in
the sandbox must reach none, and the listeners must count no connection or datagram from it.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pasar_core.sandbox.client import SandboxClient
from pasar_core.sandbox.workloads import PythonTool
from pasar_core.testing import DockerForTests, PostgresForTests
from sqlalchemy.engine import make_url

from tests.support.listeners import Listeners, host_addresses, listeners
from tests.support.redis_server import redis_server

TCP_PROBE = """
import socket
def run(args):
    results = {}
    for host, port in args["targets"]:
        try:
            with socket.create_connection((host, port), timeout=3):
                results[f"{host} {port}"] = "connected"
        except OSError as error:
            results[f"{host} {port}"] = f"{type(error).__name__} {error.errno}"
    return results
"""

UDP_PROBE = """
import socket
def run(args):
    results = {}
    for host, port in args["targets"]:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.sendto(bytes.fromhex(args.get("payload", "00")), (host, port))
                results[f"{host} {port}"] = "sent"
        except OSError as error:
            results[f"{host} {port}"] = f"{type(error).__name__} {error.errno}"
    return results
"""

INTERFACES_PROBE = """
import socket
def run(args):
    with open("/proc/net/route") as routes:
        ipv4_routes = routes.read().splitlines()[1:]
    with open("/proc/net/ipv6_route") as routes:
        ipv6_routes = [r for r in routes.read().splitlines() if not r.rstrip().endswith(" lo")]
    return {"interfaces": [name for _, name in socket.if_nameindex()],
            "ipv4_routes": ipv4_routes, "ipv6_routes": ipv6_routes}
"""

DNS_PROBE = """
import socket
def run(args):
    with open("/etc/resolv.conf") as conf:
        servers = [line.split()[1] for line in conf if line.startswith("nameserver")]
    if any(server not in ("127.0.0.1", "::1") for server in servers):
        return {"servers": servers, "lookup": "not attempted: a resolver is not loopback"}
    try:
        socket.getaddrinfo(args["name"], 80)
        lookup = "resolved"
    except OSError as error:
        lookup = type(error).__name__
    return {"servers": servers, "lookup": lookup}
"""

# A DNS query for "pasar.invalid", type A (what a resolver would send).
DNS_QUERY = "12340100000100000000000005706173617207696e76616c69640000010001"


def run_on_host(source: str, args: dict[str, Any]) -> Any:
    """The control: the same probe in the test process, where the targets must answer."""
    namespace: dict[str, Any] = {}
    exec(compile(source, "<probe>", "exec"), namespace)
    return namespace["run"](args)


def probe(sandbox: SandboxClient, source: str, args: dict[str, Any]) -> Any:
    return sandbox.call_python(PythonTool("probe:network", 1, source), args).value


def wait_for(predicate: Any) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, "the control probe never arrived"
        time.sleep(0.02)


# The container's own loopback refuses (or, for IPv6, has no address); nothing else has a route.
UNREACHABLE = {
    f"ConnectionRefusedError {errno.ECONNREFUSED}",
    f"OSError {errno.ENETUNREACH}",
    f"OSError {errno.EADDRNOTAVAIL}",
}


def reached(results: dict[str, str]) -> dict[str, str]:
    return {target: outcome for target, outcome in results.items() if outcome not in UNREACHABLE}


def gateway(pasar_docker: DockerForTests) -> str:
    """The default bridge's gateway: what a bridged container would reach this host at."""
    client = pasar_docker.client()
    try:
        bridge = client.networks.get("bridge").attrs
    finally:
        client.close()
    address = (bridge["IPAM"]["Config"] or [{}])[0].get("Gateway")
    if not address:  # a bridge the daemon was given (a private dockerd): its own address
        name = bridge["Options"]["com.docker.network.bridge.name"]
        shown = subprocess.run(["ip", "-j", "-4", "addr", "show", name], capture_output=True,
                               text=True, check=True).stdout  # fmt: skip
        address = json.loads(shown)[0]["addr_info"][0]["local"]
    # Only an address of this machine is ever aimed at (a remote daemon's bridge is not).
    assert address in host_addresses(), f"the daemon's gateway {address} is not on this host"
    return address


@pytest.fixture
def listening() -> Iterator[Listeners]:
    with listeners() as state:
        yield state


def test_tcp_out_reaches_nothing(sandbox: SandboxClient, listening: Listeners) -> None:
    targets = [[address, listening.tcp_port] for address in host_addresses()]
    assert set(run_on_host(TCP_PROBE, {"targets": targets}).values()) == {"connected"}
    wait_for(lambda: len(listening.tcp_peers) == len(targets))
    listening.reset()

    inside = probe(sandbox, TCP_PROBE, {"targets": targets})

    assert reached(inside) == {}
    assert listening.tcp_peers == []


def test_udp_out_reaches_nothing(sandbox: SandboxClient, listening: Listeners) -> None:
    targets = [[address, listening.udp_port] for address in host_addresses()]
    assert set(run_on_host(UDP_PROBE, {"targets": targets}).values()) == {"sent"}
    wait_for(lambda: len(listening.udp_peers) == len(targets))
    listening.reset()

    inside = probe(sandbox, UDP_PROBE, {"targets": targets})

    for target, outcome in inside.items():
        if target.startswith("127.0.0.1 "):
            assert outcome == "sent", target  # into the container's own loopback
        else:
            assert outcome in UNREACHABLE, target
    run_on_host(UDP_PROBE, {"targets": [["127.0.0.1", listening.udp_port]]})  # a marker
    wait_for(lambda: len(listening.udp_peers) == 1)
    assert listening.udp_peers == ["::ffff:127.0.0.1"]


def test_dns_resolves_nothing(sandbox: SandboxClient, listening: Listeners) -> None:
    inside = probe(sandbox, DNS_PROBE, {"name": "pasar-probe.invalid"})
    assert inside == {"servers": ["127.0.0.1"], "lookup": "gaierror"}

    # A DNS query straight at this host (the test's UDP listener, and port 53) goes nowhere.
    targets = [[a, port] for a in host_addresses() for port in (listening.udp_port, 53)]
    targets = [t for t in targets if not ipaddress.ip_address(str(t[0])).is_loopback]
    sent = probe(sandbox, UDP_PROBE, {"targets": targets, "payload": DNS_QUERY})
    assert reached(sent) == {}
    assert listening.udp_peers == []


def test_host_gateway_is_unreachable(
    sandbox: SandboxClient, listening: Listeners, pasar_docker: DockerForTests
) -> None:
    address = gateway(pasar_docker)
    tcp = [[address, listening.tcp_port]]
    udp = [[address, listening.udp_port]]
    assert set(run_on_host(TCP_PROBE, {"targets": tcp}).values()) == {"connected"}
    wait_for(lambda: len(listening.tcp_peers) == 1)
    listening.reset()

    assert probe(sandbox, TCP_PROBE, {"targets": tcp}) == {
        f"{address} {listening.tcp_port}": "OSError 101"
    }
    assert probe(sandbox, UDP_PROBE, {"targets": udp}) == {
        f"{address} {listening.udp_port}": "OSError 101"
    }
    assert probe(sandbox, INTERFACES_PROBE, {}) == {
        "interfaces": ["lo"], "ipv4_routes": [], "ipv6_routes": []
    }  # fmt: skip
    assert listening.tcp_peers == []
    assert listening.udp_peers == []


def test_the_tests_redis_and_postgresql_are_unreachable(
    sandbox: SandboxClient, pasar_postgres: PostgresForTests
) -> None:
    postgres = make_url(pasar_postgres.admin_url)
    assert postgres.host == "127.0.0.1", "the embedded PostgreSQL listens on loopback TCP"
    with redis_server() as redis_url:
        redis_port = make_url(redis_url).port
        targets = [["127.0.0.1", redis_port], ["127.0.0.1", postgres.port]]
        targets += [[a, p] for a in host_addresses() for _, p in targets if a != "127.0.0.1"]
        control = run_on_host(TCP_PROBE, {"targets": targets[:2]})
        assert set(control.values()) == {"connected"}

        inside = probe(sandbox, TCP_PROBE, {"targets": targets})

    assert reached(inside) == {}
    assert inside[f"127.0.0.1 {redis_port}"] == "ConnectionRefusedError 111"
    assert inside[f"127.0.0.1 {postgres.port}"] == "ConnectionRefusedError 111"
