"""The egress proxy's decisions on hostile requests, without Docker: whatever a container sends,
the proxy answers (400, 403, 502) or relays to a checked, allow-listed address, and never fails.

The connector records what it is asked to dial and dials nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from pasar_core.net.guard import Pinned
from pasar_core.sandbox.egress import EgressRules, Proxy, Streams, parse_head
from pasar_core.sandbox.limits import NetworkPolicy

ALLOWED = "127.0.0.1:8080"


class MemoryClient:
    """The container's end: sends `request`, collects what the proxy answers."""

    def __init__(self, request: bytes) -> None:
        self.pending = request
        self.answer = b""
        self.ended = False
        self.aborted = False

    async def read(self, size: int) -> bytes:
        data, self.pending = self.pending[:size], self.pending[size:]
        return data

    async def write(self, data: bytes) -> None:
        self.answer += data

    async def write_eof(self) -> None:
        self.ended = True

    def abort(self) -> None:
        self.aborted = True


class NoResolver:
    def __init__(self) -> None:
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        raise OSError("this test resolves nothing")


def serve(request: bytes) -> tuple[MemoryClient, list[Pinned], NoResolver]:
    dialled: list[Pinned] = []

    async def refuse(pinned: Pinned) -> Streams:
        dialled.append(pinned)
        raise OSError("this test dials nothing")

    resolver = NoResolver()
    rules = EgressRules.of(NetworkPolicy(allow_hosts=(ALLOWED, "api.example.com"),
                                         opened_hosts=(ALLOWED,)))  # fmt: skip
    client = MemoryClient(request)
    asyncio.run(Proxy(rules, "probe:hostile", resolver, refuse).serve(client))
    return client, dialled, resolver


def status(client: MemoryClient) -> str:
    return client.answer.split(b" ", 2)[1].decode() if client.answer else "none"


def test_the_allowed_target_is_dialled_at_its_checked_address_only() -> None:
    client, dialled, _ = serve(f"CONNECT {ALLOWED} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert [(str(p.addresses[0]), p.target.port) for p in dialled] == [("127.0.0.1", 8080)]
    assert status(client) == "502"  # the test's connector refused


def test_refusals_name_their_reason() -> None:
    cases = {
        b"CONNECT 127.0.0.1:8081 HTTP/1.1\r\n\r\n": ("403", b"not in this tool's"),
        b"GET http://169.254.169.254/ HTTP/1.1\r\n\r\n": ("403", b"not in this tool's"),
        b"GET https://api.example.com/ HTTP/1.1\r\n\r\n": ("400", b"https goes through CONNECT"),
        b"GET /relative HTTP/1.1\r\n\r\n": ("403", b"only http and https"),
        b"GET http://u:p@api.example.com/ HTTP/1.1\r\n\r\n": ("403", b"user name"),
        b"CONNECT api.example.com HTTP/1.1\r\n\r\n": ("403", b"host:port"),
        b"CONNECT api.example.com:25 HTTP/1.1\r\n\r\n": ("403", b"port 25 is refused"),
        b"CONNECT api.example.com:443 HTTP/1.1\r\n\r\n": ("502", b"could not resolve"),
        b"GET http://api.example.com/ HTTP/1.1\r\nX: a\nInjected: b\r\n\r\n": ("400", b"header"),
        b"GET http://api.example.com/ HTTP/2\r\n\r\n": ("400", b"request line"),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n": ("400", b"request line"),
    }
    for request, (expected, reason) in cases.items():
        client, dialled, _ = serve(request)
        assert (status(client), dialled) == (expected, []), (request, client.answer)
        assert reason in client.answer, (request, client.answer)
        assert client.ended


def test_an_endless_head_is_refused() -> None:
    client, dialled, _ = serve(b"GET http://api.example.com/ HTTP/1.1\r\n" + b"X: y\r\n" * 5000)
    assert (status(client), dialled) == ("400", [])
    assert b"too large" in client.answer


def test_a_request_that_never_ends_its_head_is_dropped() -> None:
    client, dialled, _ = serve(b"GET http://api.example.com/ HTTP/1.1\r\nX: y")
    assert (client.aborted, client.answer, dialled) == (True, b"", [])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600) | st.text(max_size=300).map(lambda t: t.encode("utf-8")))
def test_whatever_a_container_sends_is_answered_and_never_dials_elsewhere(raw: bytes) -> None:
    for request in (raw, raw + b"\r\n\r\n", b"CONNECT " + raw + b" HTTP/1.1\r\n\r\n",
                    b"GET " + raw + b" HTTP/1.1\r\n\r\n"):  # fmt: skip
        client, dialled, resolver = serve(request)
        assert status(client) in ("400", "403", "502", "none"), client.answer
        assert all((p.target.host, p.target.port) == ("127.0.0.1", 8080) for p in dialled)
        assert set(resolver.lookups) <= {"api.example.com"}


@given(st.binary(max_size=400))
def test_parse_head_raises_only_bad_request(raw: bytes) -> None:
    from pasar_core.sandbox.egress import BadRequest

    with contextlib.suppress(BadRequest):
        parse_head(raw)
