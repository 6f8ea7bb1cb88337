"""Fixtures: loopback-only networking, a local DNS server and resolver, local HTTP(S) servers.

No test may send traffic anywhere but 127.0.0.1 / ::1: `_loopback_only` (autouse) makes any socket
connect or datagram to another address fail the test before it leaves the machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpcore
import pasar_web
import pytest
from dnslib import AAAA, QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSServer
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import Registry, build_registry
from pasar_core.specs import ToolContext

ZONE: dict[str, list[str]] = {
    "loopback.test": ["127.0.0.1"],
    "loopback2.test": ["127.3.4.5"],
    "private10.test": ["10.1.2.3"],
    "private172.test": ["172.20.0.5"],
    "private192.test": ["192.168.0.10"],
    "cgnat.test": ["100.64.1.1"],
    "metadata.test": ["169.254.169.254"],
    "linklocal.test": ["169.254.10.10"],
    "zero.test": ["0.0.0.0"],
    "multicast.test": ["224.0.0.251"],
    "broadcast.test": ["255.255.255.255"],
    "documentation.test": ["192.0.2.10"],
    "benchmark.test": ["198.18.0.1"],
    "reserved.test": ["240.1.2.3"],
    "v6loopback.test": ["::1"],
    "v6mapped.test": ["::ffff:127.0.0.1"],
    "v6mapped-private.test": ["::ffff:10.0.0.1"],
    "v6ula.test": ["fd00::1"],
    "v6metadata.test": ["fd00:ec2::254"],
    "v6linklocal.test": ["fe80::1"],
    "v6sitelocal.test": ["fec0::1"],
    "v6multicast.test": ["ff02::1"],
    "v6sixtofour.test": ["2002:7f00:1::1"],
    "v6nat64.test": ["64:ff9b::a9fe:a9fe"],
    "v6teredo.test": ["2001:0:4136:e378:8000:63bf:3fff:fdd2"],
    "v6compat.test": ["::7f00:1"],
    "mixed.test": ["93.184.215.14", "10.0.0.1"],
    "mixed6.test": ["93.184.215.14", "::1"],
    "public.test": ["93.184.215.14"],
    "pinned.test": ["127.0.0.1"],
}
PRIVATE_NAMES = sorted(name for name in ZONE if name not in ("public.test", "pinned.test"))


def _is_loopback(host: object) -> bool:
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return str(host) == "localhost"


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test on any attempt to reach a non-loopback address."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto

    def check(address: Any) -> None:
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            raise AssertionError(f"test traffic to a non-loopback address: {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        check(args[-1])
        return real_sendto(self, data, *args)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def registry() -> Registry:
    return build_registry(build_plugin_manager(enabled=("web",)))


# ---------------------------------------------------------------- DNS


class ZoneResolver(BaseResolver):  # type: ignore[misc]
    """Answers from `zone`; a name mapped in `rounds` answers its n-th list on its n-th A query."""

    def __init__(self) -> None:
        self.zone: dict[str, list[str]] = dict(ZONE)
        self.rounds: dict[str, list[list[str]]] = {}
        self.queries: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def answers(self, name: str, qtype: str) -> list[str] | None:
        with self._lock:
            self.queries.append((name, qtype))
            if name in self.rounds:
                count = sum(1 for queried, kind in self.queries if queried == name and kind == "A")
                rounds = self.rounds[name]
                return rounds[min(max(count - 1, 0), len(rounds) - 1)]
            return self.zone.get(name)

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        answers = self.answers(name, qtype)
        if answers is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for address in answers:
            if qtype == "A" and ":" not in address:
                reply.add_answer(RR(name, QTYPE.A, rdata=A(address), ttl=0))
            elif qtype == "AAAA" and ":" in address:
                reply.add_answer(
                    RR(
                        name,
                        QTYPE.AAAA,
                        rdata=AAAA(list(ipaddress.IPv6Address(address).packed)),
                        ttl=0,
                    )
                )
        return reply

    def count(self, name: str, qtype: str = "A") -> int:
        with self._lock:
            return sum(1 for queried, kind in self.queries if (queried, kind) == (name, qtype))


class _QuietLogger:
    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


@dataclass
class LocalDnsResolver:
    """A `pasar_web.Resolver` that asks the test DNS server on 127.0.0.1 (A, then AAAA)."""

    port: int

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        return await asyncio.to_thread(self._lookup, host)

    def _lookup(self, host: str) -> list[str]:
        addresses: list[str] = []
        for qtype in ("A", "AAAA"):
            packet = DNSRecord.question(host, qtype).send("127.0.0.1", self.port, timeout=5)
            reply = DNSRecord.parse(packet)
            if reply.header.rcode == RCODE.NXDOMAIN:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            addresses += [str(rr.rdata) for rr in reply.rr if rr.rtype in (QTYPE.A, QTYPE.AAAA)]
        return addresses


@dataclass
class Dns:
    zone: ZoneResolver
    resolver: LocalDnsResolver
    private_names: Sequence[str] = tuple(PRIVATE_NAMES)
    """Names the zone maps to addresses the guard refuses."""


@pytest.fixture(scope="session")
def _dns_server() -> Iterator[tuple[ZoneResolver, int]]:
    zone = ZoneResolver()
    server = DNSServer(zone, address="127.0.0.1", port=0, logger=_QuietLogger())
    server.start_thread()
    try:
        yield zone, server.server.server_address[1]
    finally:
        server.stop()
        server.server.server_close()


@pytest.fixture
def dns(_dns_server: tuple[ZoneResolver, int]) -> Dns:
    zone, port = _dns_server
    zone.zone = dict(ZONE)
    zone.rounds = {}
    zone.queries.clear()
    return Dns(zone=zone, resolver=LocalDnsResolver(port))


# ---------------------------------------------------------------- HTTP

ARTICLE = """<!doctype html>
<html lang="en"><head>
<meta charset="utf-8">
<title>Rice terraces of Bali</title>
<meta name="description" content="How subak irrigation shares water between farms.">
<meta name="author" content="Made Wirawan">
</head><body>
<nav><a href="/">Home</a> | <a href="/about">About us</a> | <a href="/shop">Shop</a></nav>
<article>
<h1>Rice terraces of Bali</h1>
<p>The subak system is a cooperative way of sharing irrigation water that dates back to the
ninth century. Farmers who draw from the same spring meet at a water temple and agree on a
planting calendar, so that every terrace gets its share.</p>
<p>Because the whole watershed plants together, pests lose their habitat between harvests, and the
terraces of Jatiluwih have been farmed this way for more than a thousand years.</p>
<p>UNESCO listed the cultural landscape of Bali province in 2012, citing the subak as a living
example of the Tri Hita Karana philosophy of harmony between people, nature and the divine.</p>
</article>
<footer>Copyright footer text that is boilerplate</footer>
</body></html>
"""

LINKS_PAGE = """<!doctype html><html><head><title>Links</title><base href="/docs/"></head><body>
<a href="intro.html">Intro</a>
<a href="/about">About <b>us</b></a>
<a href="https://example.org/x#frag">Elsewhere</a>
<a href="https://example.org/x">Elsewhere again</a>
<a href="javascript:alert(1)">Script</a>
<a href="mailto:a@example.org">Mail</a>
<a href="#top">Top</a>
<a href="guide.html" title="The guide"></a>
<a href="//cdn.example.net/lib.js">CDN</a>
<a href="http://[::1">Broken</a>
<a>No href</a>
</body></html>
"""


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Streamed:
    """A streaming response: bytes written before it ended, and whether the client hung up
    (rather than the server writing all of it, or the test server stopping)."""

    path: str
    written: int
    client_hung_up: bool


@dataclass
class Server:
    """A threaded http.server on 127.0.0.1 (or https with a trustme certificate)."""

    port: int
    scheme: str = "http"
    address: str = "127.0.0.1"
    requests: list[Seen] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    streams: list[Streamed] = field(default_factory=list)
    """How each streaming response (/huge, /trickle) ended, once it has."""
    streamed: threading.Condition = field(default_factory=threading.Condition)

    def stream_ends(self, count: int, timeout_s: float = 30) -> list[Streamed]:
        """Wait until `count` streaming responses have ended; how they did."""
        with self.streamed:
            self.streamed.wait_for(lambda: len(self.streams) >= count, timeout_s)
            return list(self.streams)

    @property
    def host(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{address}:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://{self.host}{path}"


class _Handler(BaseHTTPRequestHandler):
    server_version = "pasar-test"
    protocol_version = "HTTP/1.1"

    @property
    def state(self) -> Server:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _streamed(self, path: str, written: int, hung_up: bool) -> None:
        with self.state.streamed:
            self.state.streams.append(Streamed(path, written, hung_up))
            self.state.streamed.notify_all()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        self.state.requests.append(
            Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        path = split.path
        if path == "/article":
            self._send(200, ARTICLE.encode(), "text/html; charset=utf-8")
        elif path == "/latin1":
            page = "<html><head><title>Café</title></head><body><p>Crème brûlée</p></body></html>"
            self._send(200, page.encode("latin-1"), "text/html; charset=iso-8859-1")
        elif path == "/plain":
            self._send(200, "just text\nline two ✓\n".encode(), "text/plain; charset=utf-8")
        elif path == "/untyped":
            self._send(200, b"<html><head><title>T</title></head><body>x</body></html>", "")
        elif path == "/links":
            self._send(200, LINKS_PAGE.encode(), "text/html")
        elif path == "/json":
            self._send(200, json.dumps({"ok": True, "items": [1, 2, 3]}).encode(),
                       "application/json", Set_Cookie="session=secret")  # fmt: skip
        elif path == "/echo":
            echo = {
                "method": self.command,
                "path": self.path,
                "query": query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            self._send(200, json.dumps(echo).encode(), "application/json")
        elif path == "/redirect":
            self._send(int(query.get("status", "302")), b"", "text/plain", Location=query["to"])
        elif path.startswith("/chain/"):
            left = int(path.rsplit("/", 1)[1])
            if left == 0:
                self._send(200, ARTICLE.encode(), "text/html; charset=utf-8")
            else:
                self._send(302, b"", "text/plain", Location=f"/chain/{left - 1}")
        elif path == "/huge":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            chunk = b"a" * 65536
            written, hung_up = 0, False
            try:
                for _ in range(1024):  # 64 MiB if nobody stops reading
                    if self.state.stop.is_set():
                        break
                    self.wfile.write(chunk)
                    written += len(chunk)
            except OSError:
                hung_up = True
            self._streamed(path, written, hung_up)
            self.close_connection = True
        elif path == "/slow":
            self.state.stop.wait(float(query.get("s", "10")))
            self._send(200, b"late", "text/plain")
        elif path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            written, hung_up = 0, False
            try:
                for _ in range(200):  # one byte every 0.1 s, 20 s in all
                    if self.state.stop.wait(0.1):
                        break
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    written += 1
            except OSError:
                hung_up = True
            self._streamed(path, written, hung_up)
            self.close_connection = True
        elif path == "/pdf":
            self._send(200, b"%PDF-1.7\n" + bytes(range(256)) * 100, "application/pdf")
        elif path == "/png":
            self._send(200, b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image/png")
        elif path == "/nul":
            self._send(200, b"looks like text\x00\x01\x02 but is not", "text/plain")
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._send(code, b"status page", "text/plain")
        else:
            self._send(404, b"not found", "text/plain")


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that stop reading (size caps, timeouts) are expected here


class _Quiet6(_Quiet):
    address_family = socket.AF_INET6


def _serve(
    ssl_context: ssl.SSLContext | None = None, address: str = "127.0.0.1"
) -> Iterator[Server]:
    httpd = (_Quiet6 if ":" in address else _Quiet)((address, 0), _Handler)
    if ssl_context is not None:
        httpd.socket = ssl_context.wrap_socket(httpd.socket, server_side=True)
    scheme = "https" if ssl_context else "http"
    state = Server(port=httpd.server_address[1], scheme=scheme, address=address)
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
        time.sleep(0)  # let handler threads see `stop`


@pytest.fixture
def server() -> Iterator[Server]:
    yield from _serve()


@pytest.fixture
def server6() -> Iterator[Server]:
    """The same server on the IPv6 loopback address ::1."""
    yield from _serve(address="::1")


@pytest.fixture
def other_server() -> Iterator[Server]:
    """A second loopback server, on a port the tests do not allow-list unless they say so."""
    yield from _serve()


@dataclass
class Tls:
    server: Server
    client_context: ssl.SSLContext


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Tls]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("pinned.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    for state in _serve(server_context):
        yield Tls(server=state, client_context=client_context)


def make_ctx(
    *,
    allow: Sequence[str] = (),
    resolver: object | None = None,
    extras: dict[str, Any] | None = None,
) -> ToolContext:
    all_extras: dict[str, Any] = dict(extras or {})
    if resolver is not None:
        all_extras[pasar_web.RESOLVER_EXTRA] = resolver
    return ToolContext(
        user_id="u1",
        storage_root=Path("/nonexistent"),
        settings={"allow_hosts": list(allow)},
        extras=all_extras,
    )


@dataclass
class ConnectSpy:
    calls: list[tuple[str, int]]


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> ConnectSpy:
    """Any TCP connection attempt by the web tools fails the test (and is recorded)."""
    spy = ConnectSpy(calls=[])

    async def refuse(self: object, host: str, port: int, *args: Any, **kwargs: Any) -> None:
        spy.calls.append((host, port))
        raise AssertionError(f"the guard let a connection to {host}:{port} through")

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", refuse)
    return spy


@pytest.fixture
def record_connect(monkeypatch: pytest.MonkeyPatch) -> ConnectSpy:
    """Record where the web tools dial; non-loopback dials fail as a connect error, unsent."""
    spy = ConnectSpy(calls=[])
    real = httpcore.AnyIOBackend.connect_tcp

    async def recording(
        self: httpcore.AnyIOBackend, host: str, port: int, *args: Any, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        spy.calls.append((host, port))
        if not _is_loopback(host):
            raise httpcore.ConnectError(f"test network: {host} is unreachable")
        return await real(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", recording)
    return spy


@pytest.fixture
def ctx_for() -> Callable[..., ToolContext]:
    """ctx_for(allow=(), resolver=None, extras=None) -> a ToolContext for the web tools."""
    return make_ctx
