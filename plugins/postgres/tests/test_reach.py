"""The postgres tools cannot be aimed at the server's own network, nor used as a port scanner.

Private and metadata targets are decided by the guard alone: connecting fails the test
(`no_connect`), or (`dials`) any address but loopback fails as unreachable without a packet sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pasar_core.net.guard import ALLOW_BOUND_EXTRA, ALLOW_SOCKETS_EXTRA
from pasar_core.net.resolver import RESOLVER_EXTRA
from pasar_core.registry import Registry
from pasar_core.specs import ToolContext
from pasar_postgres import connection
from pasar_postgres.connection import UNREACHABLE_MESSAGE, DatabaseUnreachable
from sqlalchemy.engine import make_url

from .conftest import Dials

pytestmark = pytest.mark.anyio

PASSWORD = "hunter2-do-not-show"


class Resolver:
    """Answers from a table, in turn per name (a rebinding resolver when a name has several)."""

    def __init__(self, answers: dict[str, Sequence[Sequence[str]] | OSError]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        answer = self.answers.get(host)
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if isinstance(answer, OSError):
            raise answer
        return answer[min(self.asked.count(host), len(answer)) - 1]


def with_dsn(
    ctx: ToolContext,
    dsn: str,
    *,
    resolver: Resolver | None = None,
    allow: Sequence[str] | None = None,
    sockets: Sequence[str] = (),
) -> ToolContext:
    extras = dict(ctx.extras)
    if resolver is not None:
        extras[RESOLVER_EXTRA] = resolver
    if allow is not None:
        extras[ALLOW_BOUND_EXTRA] = tuple(allow)
    extras[ALLOW_SOCKETS_EXTRA] = tuple(sockets)
    return dataclasses.replace(ctx, secrets={"postgres_dsn": dsn}, extras=extras)


async def refusal(registry: Registry, ctx: ToolContext) -> tuple[str, str, dict[str, Any]]:
    """The (code, message, details) the caller sees for a call that must not connect."""
    with pytest.raises(DatabaseUnreachable) as caught:
        await registry.invoke("postgres:query", ctx, {"sql": "SELECT 1"})
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    return caught.value.code, caught.value.message, caught.value.details


def dsn_for(host: str, port: int = 5432, **query: str) -> str:
    tail = "&".join(f"{key}={value}" for key, value in query.items())
    return f"postgresql://agent:{PASSWORD}@{host}:{port}/shop" + (f"?{tail}" if tail else "")


PUBLIC = "93.184.216.34"

REFUSED_HOSTS = [
    "10.0.0.1",
    "0x0a000001",  # 10.0.0.1 in hex
    "012.0.0.1",  # 10.0.0.1 with an octal first part
    "167772161",  # 10.0.0.1 as one decimal number
    "10.1",  # 10.0.0.1, short form
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",
    "127.0.0.2",  # loopback, but the operator listed 127.0.0.1 only
    "0x7f.2",
    "0",
    "0.0.0.0",
    "169.254.169.254",
    "2852039166",  # 169.254.169.254
    "0xa9fea9fe",
    "[::ffff:127.0.0.1]",  # mapped loopback, not the listed spelling
    "[::ffff:a9fe:a9fe]",  # mapped metadata
    "[fd00::1]",
    "[fd00:ec2::254]",
    "[fe80::1]",
    "[::]",
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of the metadata address
    "metadata.google.internal",
    "metadata",
    "intranet",  # single-label name
    "db.internal",
    "printer.local",
]


@pytest.mark.parametrize("host", REFUSED_HOSTS)
async def test_private_and_metadata_hosts_are_refused_before_connecting(
    registry: Registry, operator_ctx: ToolContext, no_connect: Dials, host: str
) -> None:
    resolver = Resolver({})
    outcome = await refusal(registry, with_dsn(operator_ctx, dsn_for(host), resolver=resolver))
    assert outcome == ("POSTGRES_UNREACHABLE", UNREACHABLE_MESSAGE, {})
    assert no_connect.calls == []


@pytest.mark.parametrize(
    ("host", "answers"),
    [
        ("db.example.com", [["10.0.0.5"]]),
        ("db.example.com", [[PUBLIC, "10.0.0.5"]]),  # one private answer refuses the host
        ("db.example.com", [["169.254.169.254"]]),
        ("db.example.com", [["::ffff:10.0.0.5"]]),
        ("db.example.com", [["fd12::1"]]),
        ("localtest.me", [["127.0.0.1"]]),  # a public name for loopback, not listed
    ],
)
async def test_names_that_resolve_to_private_addresses_are_refused(
    registry: Registry,
    operator_ctx: ToolContext,
    no_connect: Dials,
    host: str,
    answers: list[list[str]],
) -> None:
    resolver = Resolver({host: answers})
    outcome = await refusal(registry, with_dsn(operator_ctx, dsn_for(host), resolver=resolver))
    assert outcome == ("POSTGRES_UNREACHABLE", UNREACHABLE_MESSAGE, {})
    assert resolver.asked == [host]
    assert no_connect.calls == []


async def test_privileged_ports_of_public_hosts_are_refused(
    registry: Registry, operator_ctx: ToolContext, no_connect: Dials
) -> None:
    for port in (22, 25, 111, 443 - 1):
        outcome = await refusal(registry, with_dsn(operator_ctx, dsn_for(PUBLIC, port)))
        assert outcome == ("POSTGRES_UNREACHABLE", UNREACHABLE_MESSAGE, {})
    assert no_connect.calls == []


def _spellings(address: ipaddress.IPv4Address) -> list[str]:
    number = int(address)
    parts = address.packed
    return [
        str(address),
        str(number),
        hex(number),
        ".".join(f"0{part:o}" for part in parts),
        ".".join(hex(part) for part in parts),
        f"{parts[0]}.{int.from_bytes(parts[1:], 'big')}",
        f"[::ffff:{address}]",
    ]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    address=st.ip_addresses(v=4).filter(lambda ip: not ip.is_global),
    pick=st.integers(0, 6),
)
def test_no_spelling_of_a_non_public_ipv4_address_gets_through(
    registry: Registry,
    tool_context: ToolContext,
    no_connect: Dials,
    address: ipaddress.IPv4Address,
    pick: int,
) -> None:
    host = _spellings(address)[pick]
    ctx = with_dsn(tool_context, dsn_for(host), allow=())  # the operator opens nothing

    async def run() -> None:
        assert await refusal(registry, ctx) == (
            "POSTGRES_UNREACHABLE",
            UNREACHABLE_MESSAGE,
            {},
        )

    asyncio.run(run())
    assert no_connect.calls == []


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A port that accepts and then never answers (what a filtered port looks like)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_every_refused_or_unreachable_host_gives_the_same_error(
    registry: Registry,
    operator_ctx: ToolContext,
    shop_url: str,
    dials: Dials,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Refused private address, closed port, silent port, DNS failure, TLS refused, wrong
    password, unknown database: one code, one message, nothing else to tell them apart."""
    monkeypatch.setattr(connection, "CONNECT_TIMEOUT_S", 0.5)
    url = make_url(shop_url)
    real = url.set(password=PASSWORD).render_as_string(hide_password=False)
    resolver = Resolver({"gone.example.com": socket.gaierror(-2, "Name or service not known")})
    async with silent_server() as silent_port:
        cases = {
            "private address": dsn_for("10.20.30.40", url.port or 5432),
            "metadata address": dsn_for("169.254.169.254"),
            "closed port": dsn_for("127.0.0.1", _closed_port()),
            "silent port": dsn_for("127.0.0.1", silent_port),
            "unknown name": dsn_for("gone.example.com"),
            "no TLS on the server": make_url(shop_url)
            .update_query_dict({"sslmode": "require"})
            .render_as_string(hide_password=False),
            "wrong password": real,
            "unknown database": url.set(database="no_such_db").render_as_string(
                hide_password=False
            ),
        }
        outcomes = {}
        with caplog.at_level(logging.DEBUG, logger="pasar.postgres"):
            for case, dsn in cases.items():
                ctx = with_dsn(operator_ctx, dsn, resolver=resolver)
                outcomes[case] = await refusal(registry, ctx)
    assert outcomes["private address"] == ("POSTGRES_UNREACHABLE", UNREACHABLE_MESSAGE, {})
    assert all(outcome == outcomes["private address"] for outcome in outcomes.values())
    reasons = [r.getMessage() for r in caplog.records if r.name == "pasar.postgres"]
    assert len(reasons) == len(cases)  # each failure logged once, with its real reason
    for reason, expected in zip(
        reasons,
        [
            "refused by the network guard",
            "refused by the network guard",
            "Connect call failed",
            "no answer within 0.5 s",
            "could not resolve gone.example.com",
            "rejected SSL upgrade",
            "password authentication failed",
            'database "no_such_db" does not exist',
        ],
        strict=True,
    ):
        assert expected in reason, reason
        assert PASSWORD not in reason
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "pasar.postgres")
    assert {call["host"] for call in dials.calls} == {"127.0.0.1"}  # never 10.x or 169.254.x


async def test_the_driver_dials_the_checked_address_never_the_name(
    registry: Registry, operator_ctx: ToolContext, shop_url: str, dials: Dials
) -> None:
    """A name the operator allows is resolved once by the guard; the driver gets that address."""
    url = make_url(shop_url)
    dsn = url.set(host="shop.db.test").render_as_string(hide_password=False)
    resolver = Resolver({"shop.db.test": [["127.0.0.1"], ["10.0.0.9"]]})  # rebinds on a 2nd ask
    ctx = with_dsn(operator_ctx, dsn, resolver=resolver, allow=["shop.db.test"])
    result = await registry.invoke("postgres:query", ctx, {"sql": "SELECT 41 + 1 AS n"})
    assert result["rows"] == [{"n": 42}]
    assert resolver.asked == ["shop.db.test"]
    assert {call["host"] for call in dials.calls} == {"127.0.0.1"}  # TLS tried, then plain


async def test_a_rebinding_name_cannot_move_the_connection(
    registry: Registry, operator_ctx: ToolContext, dials: Dials
) -> None:
    """Public on the guard's lookup, loopback afterwards: only the public address is dialled."""
    resolver = Resolver({"rebind.example.com": [[PUBLIC], ["127.0.0.1"]]})
    ctx = with_dsn(operator_ctx, dsn_for("rebind.example.com"), resolver=resolver)
    await refusal(registry, ctx)
    assert resolver.asked == ["rebind.example.com"]
    assert [call["host"] for call in dials.calls] == [PUBLIC]


async def test_each_checked_address_is_tried_in_turn(
    registry: Registry, operator_ctx: ToolContext, shop_url: str, dials: Dials
) -> None:
    url = make_url(shop_url).update_query_dict({"sslmode": "disable"})
    dsn = url.set(host="both.db.test").render_as_string(hide_password=False)
    resolver = Resolver({"both.db.test": [[PUBLIC, "127.0.0.1"]]})
    ctx = with_dsn(operator_ctx, dsn, resolver=resolver, allow=["both.db.test"])
    result = await registry.invoke("postgres:query", ctx, {"sql": "SELECT 1 AS n"})
    assert result["rows"] == [{"n": 1}]
    assert [call["host"] for call in dials.calls] == [PUBLIC, "127.0.0.1"]


@contextlib.asynccontextmanager
async def unix_listener(directory: Path, port: int) -> AsyncIterator[list[str]]:
    """A unix socket where PostgreSQL's would be; records each connection, then hangs up."""
    accepted: list[str] = []

    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append("connected")
        writer.close()

    server = await asyncio.start_unix_server(hang_up, path=str(directory / f".s.PGSQL.{port}"))
    try:
        yield accepted
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pgsock-") as name:  # short: AF_UNIX paths are small
        yield Path(name)


async def test_unix_sockets_only_in_directories_the_operator_allows(
    registry: Registry, operator_ctx: ToolContext, socket_dir: Path
) -> None:
    encoded = str(socket_dir).replace("/", "%2F")
    dsn = f"postgresql://agent:{PASSWORD}@{encoded}:6432/shop"
    async with unix_listener(socket_dir, 6432) as accepted:
        refused = await refusal(registry, with_dsn(operator_ctx, dsn))
        assert accepted == []  # not listed: never dialled
        other = await refusal(registry, with_dsn(operator_ctx, dsn, sockets=["/var/run/pg"]))
        assert accepted == []
        allowed = await refusal(registry, with_dsn(operator_ctx, dsn, sockets=[str(socket_dir)]))
        assert accepted == ["connected"]  # listed: dialled (and this listener hangs up)
    assert refused == other == allowed == ("POSTGRES_UNREACHABLE", UNREACHABLE_MESSAGE, {})


@dataclasses.dataclass
class TlsStub:
    port: int
    names: list[str | None]
    handshakes: list[str]


@contextlib.asynccontextmanager
async def tls_stub(context: ssl.SSLContext) -> AsyncIterator[TlsStub]:
    """Answers PostgreSQL's SSLRequest with 'S', completes TLS (recording SNI), then hangs up."""
    stub = TlsStub(port=0, names=[], handshakes=[])

    def sni(_obj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        stub.names.append(name)

    context.sni_callback = sni

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readexactly(8)  # SSLRequest
            writer.write(b"S")
            await writer.drain()
            await writer.start_tls(context)
            stub.handshakes.append("ok")
        except (ssl.SSLError, OSError, asyncio.IncompleteReadError) as error:
            stub.handshakes.append(type(error).__name__)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    stub.port = int(server.sockets[0].getsockname()[1])
    try:
        yield stub
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("cert_name", "sslmode", "verified"),
    [
        ("db.test", "verify-full", True),
        ("other.test", "verify-full", False),  # the name is checked, not the pinned address
        ("other.test", "verify-ca", True),
        ("other.test", "require", True),
    ],
)
async def test_tls_to_a_pinned_address_uses_the_dsn_name(
    registry: Registry,
    operator_ctx: ToolContext,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cert_name: str,
    sslmode: str,
    verified: bool,
) -> None:
    import trustme

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(cert_name).configure_cert(server_context)
    ca_file = tmp_path / "root.crt"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("PGSSLROOTCERT", str(ca_file))
    async with tls_stub(server_context) as stub:
        resolver = Resolver({"db.test": [["127.0.0.1"]]})
        dsn = dsn_for("db.test", stub.port, sslmode=sslmode)
        ctx = with_dsn(operator_ctx, dsn, resolver=resolver, allow=["db.test"])
        outcome = await refusal(registry, ctx)  # the stub hangs up after TLS
    assert outcome == ("POSTGRES_UNREACHABLE", UNREACHABLE_MESSAGE, {})
    assert stub.names == ["db.test"]  # SNI is the DSN's name, though 127.0.0.1 was dialled
    assert (stub.handshakes == ["ok"]) is verified
