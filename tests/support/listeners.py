"""Listeners on every address of this host that count what reaches them, and those addresses.

The containment tests aim sandboxed code at these (and only these): each target is on this
machine, so no test traffic can leave it, and a control probe from the test process proves that
each target answers.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


def host_addresses() -> list[str]:
    """IPv4 and global IPv6 addresses of this host's interfaces (loopback included)."""
    output = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout
    addresses = []
    for interface in json.loads(output):
        for info in interface.get("addr_info", []):
            address = ipaddress.ip_address(info["local"])
            if address.version == 6 and address.is_link_local:
                continue  # needs a scope id; the interface's IPv4 and global addresses suffice
            addresses.append(str(address))
    return addresses


@dataclass
class Listeners:
    tcp_port: int
    udp_port: int
    tcp_peers: list[str] = field(default_factory=list)
    udp_peers: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.tcp_peers.clear()
        self.udp_peers.clear()


@contextlib.contextmanager
def listeners() -> Iterator[Listeners]:
    """A TCP and a UDP socket on all addresses (IPv4 and IPv6) of this host."""
    tcp = socket.create_server(("", 0), family=socket.AF_INET6, dualstack_ipv6=True)
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    udp.bind(("", 0))
    state = Listeners(tcp_port=tcp.getsockname()[1], udp_port=udp.getsockname()[1])
    stop = threading.Event()
    tcp.settimeout(0.1)
    udp.settimeout(0.1)

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, peer = tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            state.tcp_peers.append(str(peer[0]))
            connection.close()

    def receive() -> None:
        while not stop.is_set():
            try:
                _, peer = udp.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            state.udp_peers.append(str(peer[0]))

    threads = [threading.Thread(target=accept), threading.Thread(target=receive)]
    for thread in threads:
        thread.start()
    try:
        yield state
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        tcp.close()
        udp.close()
