"""The sandbox egress proxy: where a sandboxed tool with `network.allow_hosts` may connect.

Every container keeps `--network none`. For a workload with allow_hosts the worker starts pasar's
relay inside the container (`docker exec` of `sandbox_images/python/egress_relay.py`), which
listens on the container's loopback (`HTTP_PROXY=http://127.0.0.1:3128`) and carries each
connection, as frames on the exec's stdin and stdout, to this proxy in the sandbox worker process
(one asyncio loop in a thread). The proxy speaks HTTP proxy: `CONNECT host:port` (https, or any
TCP) and plain-HTTP requests in absolute form. For each connection:

- the target must be one of the tool version's `allow_hosts` (a host: any port the guard allows;
  `host:port`: that port), else 403;
- `pasar_core.net.guard` decides with one resolution: public addresses only, plus loopback and
  private ones for the entries the operator opened (`PASAR_ALLOW_PRIVATE_HOSTS`); metadata,
  link-local and the rest never;
- the proxy connects to the checked addresses only (no second lookup: no DNS rebinding).

The channel belongs to one container, so a container can only ever use its own tool's allow list,
and nothing but this proxy is reachable from it: no bridge, no gateway, no resolver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import ssl
import struct
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from pasar_core.errors import SandboxUnavailable, ToolError
from pasar_core.net.guard import (
    AllowList,
    Pinned,
    Target,
    TargetRefused,
    guard,
    host_target,
    parse_target,
)
from pasar_core.net.resolver import SYSTEM_RESOLVER, Resolver
from pasar_core.sandbox.limits import KIB, NetworkPolicy

log = logging.getLogger("pasar.sandbox.egress")

RELAY_COMMAND = ("/usr/bin/python3.11", "-I", "-S", "-B", "/opt/pasar/egress_relay.py")
PROXY_URL = "http://127.0.0.1:3128"
PROXY_ENVIRONMENT = {name: PROXY_URL for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                                  "https_proxy")}  # fmt: skip
"""What a container with allow_hosts gets in its environment (nothing secret)."""

HEADER = struct.Struct(">IBI")
READY, OPEN, DATA, EOF, RESET = range(5)
DOCKER_HEADER = 8
DOCKER_STDOUT, DOCKER_STDERR = 1, 2
CHUNK = 64 * KIB
MAX_FRAME = 1024 * KIB
MAX_HEAD_BYTES = 16 * KIB
QUEUED_CHUNKS = 16
"""Bytes from the container wait here per connection (at most 16 relay chunks); past that the
channel stops reading until the upstream takes them."""
HEAD_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 300.0
READY_TIMEOUT_S = 30.0
MAX_ADDRESSES_TRIED = 4
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authorization", "proxy-authenticate", "proxy-connection",
     "te", "trailer", "transfer-encoding", "upgrade", "host"}
)  # fmt: skip
"""Request headers the proxy does not forward (`transfer-encoding` is kept: see `_forward`)."""


@dataclass(frozen=True, slots=True)
class EgressRules:
    """`allowed`: the tool version's allow_hosts, the only targets; `opened`: those of them the
    operator opened, which alone may resolve to loopback or private addresses."""

    allowed: AllowList
    opened: AllowList

    @classmethod
    def of(cls, network: NetworkPolicy) -> EgressRules:
        return cls(
            allowed=AllowList.parse(list(network.allow_hosts)),
            opened=AllowList.parse(list(network.opened_hosts)),
        )


async def egress_decision(target: Target, rules: EgressRules, resolver: Resolver) -> Pinned:
    """Whether (and to which addresses) a connection to `target` may go: the allow list, then
    the SSRF guard with one resolution. Raises `TargetRefused` (or `ToolError` when the name
    does not resolve)."""
    if not rules.allowed.lists_host(target):
        raise TargetRefused(
            f"{target.host}:{target.port}", "the host is not in this tool's network.allow_hosts"
        )
    return await guard(target.url, rules.opened, resolver)


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Connector = Callable[[Pinned], Awaitable[Streams]]


async def connect_pinned(pinned: Pinned) -> Streams:
    """A TCP connection to one of the guard's addresses (never a name)."""
    last: Exception = OSError("no address to connect to")
    for address in pinned.addresses[:MAX_ADDRESSES_TRIED]:
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(str(address), pinned.target.port), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as error:
            last = error
    raise OSError(f"could not connect: {last}")


class ClientSide(Protocol):
    """The container's end of one proxied connection."""

    async def read(self, size: int) -> bytes: ...
    async def write(self, data: bytes) -> None: ...
    async def write_eof(self) -> None: ...
    def abort(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Head:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]


class BadRequest(ValueError):
    pass


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def parse_head(raw: bytes) -> Head:
    """The request line and headers (RFC 9112 syntax, strictly: no bare CR or LF, no folding)."""
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if (len(parts) != 3 or not parts[0].isalpha() or not parts[1]
            or parts[2] not in ("HTTP/1.0", "HTTP/1.1")):  # fmt: skip
        raise BadRequest("not an HTTP/1 request line")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise BadRequest("a malformed header line")
        headers.append((name, value.strip(" \t")))
    return Head(parts[0].upper(), parts[1], parts[2], headers)


def connect_target(authority: str) -> Target:
    """`host:port` (or `[v6]:port`) of a CONNECT request, as the guard sees it."""
    host, colon, port = authority.rpartition(":")
    if not colon or not port.isdigit():
        raise TargetRefused(authority[:200], "CONNECT needs host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host_target(host, int(port))


def _response(status: int, reason: str, text: str) -> bytes:
    body = f"pasar egress proxy: {text}\n".encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body  # fmt: skip


def _forward(head: Head, target: Target) -> bytes:
    """The request as the origin server gets it: origin-form, its own Host, one request."""
    path = target.url.raw_path.decode("ascii") or "/"
    lines = [f"{head.method} {path} {head.version}", f"host: {target.url.netloc.decode('ascii')}"]
    for name, value in head.headers:
        lowered = name.lower()
        if lowered in HOP_BY_HOP and lowered != "transfer-encoding":
            continue
        lines.append(f"{name}: {value}")
    lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_head(client: ClientSide) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD_BYTES:
            raise BadRequest("the request head is too large")
        chunk = await client.read(CHUNK)
        if not chunk:
            raise EOFError
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


@dataclass(slots=True)
class Proxy:
    """The proxy's decisions and relaying for one container's connections."""

    rules: EgressRules
    tool_id: str
    resolver: Resolver = SYSTEM_RESOLVER
    connector: Connector = connect_pinned

    async def serve(self, client: ClientSide) -> None:
        try:
            head_bytes, rest = await asyncio.wait_for(_read_head(client), HEAD_TIMEOUT_S)
            head = parse_head(head_bytes)
        except (EOFError, TimeoutError):
            client.abort()
            return
        except BadRequest as error:
            await self._answer(client, 400, "Bad Request", str(error))
            return
        try:
            if head.method == "CONNECT":
                target = connect_target(head.target)
            else:
                target = parse_target(head.target)
                if target.url.scheme != "http":
                    raise BadRequest("https goes through CONNECT")
            pinned = await egress_decision(target, self.rules, self.resolver)
        except BadRequest as error:
            await self._answer(client, 400, "Bad Request", str(error))
            return
        except TargetRefused as refused:
            log.info("sandbox egress: %s refused %s: %s", self.tool_id, refused.url, refused.reason)
            await self._answer(client, 403, "Forbidden", f"refused: {refused.reason}")
            return
        except ToolError as error:  # the name does not resolve
            await self._answer(client, 502, "Bad Gateway", error.message)
            return
        try:
            upstream_reader, upstream_writer = await self.connector(pinned)
        except OSError as error:
            await self._answer(client, 502, "Bad Gateway", str(error)[:300])
            return
        try:
            if head.method == "CONNECT":
                await client.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream_writer.write(_forward(head, target))
            if rest:
                upstream_writer.write(rest)
            await _pipe(client, upstream_reader, upstream_writer)
        finally:
            await _closed(upstream_writer)

    async def _answer(self, client: ClientSide, status: int, reason: str, text: str) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            await client.write(_response(status, reason, text))
            await client.write_eof()


async def _closed(writer: asyncio.StreamWriter) -> None:
    """Close and wait until the socket is closed (not left to the collector at shutdown)."""
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


async def _pipe(
    client: ClientSide, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    async def outward() -> None:
        while chunk := await asyncio.wait_for(client.read(CHUNK), IDLE_TIMEOUT_S):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    async def inward() -> None:
        while chunk := await asyncio.wait_for(reader.read(CHUNK), IDLE_TIMEOUT_S):
            await client.write(chunk)
        await client.write_eof()

    tasks = [asyncio.ensure_future(outward()), asyncio.ensure_future(inward())]
    try:
        await asyncio.gather(*tasks)
    except (OSError, ConnectionError, TimeoutError, EOFError):
        client.abort()
    finally:
        for task in tasks:
            task.cancel()


@dataclass(eq=False, slots=True)
class RelayedClient:
    """One connection the relay accepted in the container, seen from the proxy."""

    channel: EgressChannel
    connection: int
    chunks: asyncio.Queue[bytes | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUED_CHUNKS)
    )
    pending: bytes = b""
    ended: bool = False
    reset: bool = False

    async def read(self, size: int) -> bytes:
        if not self.pending and not self.ended:
            chunk = await self.chunks.get()
            if chunk is None:
                self.ended = True
                if self.reset:
                    raise ConnectionResetError("the container reset the connection")
            else:
                self.pending = chunk
        data, self.pending = self.pending[:size], self.pending[size:]
        return data

    async def write(self, data: bytes) -> None:
        for start in range(0, len(data), CHUNK):
            await self.channel.send(self.connection, DATA, data[start : start + CHUNK])

    async def write_eof(self) -> None:
        await self.channel.send(self.connection, EOF)

    def abort(self) -> None:
        self.channel.send_soon(self.connection, RESET)


@dataclass(eq=False, slots=True)
class EgressChannel:
    """One container's relay: frames in on the exec's (multiplexed) stdout, out on its stdin."""

    proxy: Proxy
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    loop: asyncio.AbstractEventLoop
    clients: dict[int, RelayedClient] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    relay_pid: int = 0
    keepalive: object = None
    """The SDK's hijacked connection (a file object over the socket), closed with the channel."""
    _runner: asyncio.Task[None] | None = None

    async def send(self, connection: int, kind: int, payload: bytes = b"") -> None:
        self.writer.write(HEADER.pack(connection, kind, len(payload)) + payload)
        await self.writer.drain()

    def send_soon(self, connection: int, kind: int) -> None:
        if not self.writer.is_closing():
            self.writer.write(HEADER.pack(connection, kind, 0))

    async def run(self, ready: asyncio.Future[int]) -> None:
        frames = bytearray()
        try:
            while True:
                header = await self.reader.readexactly(DOCKER_HEADER)
                size = int.from_bytes(header[4:8], "big")
                payload = await self.reader.readexactly(size)
                if header[0] != DOCKER_STDOUT:
                    continue  # the relay's stderr: nothing the proxy acts on
                frames += payload
                while len(frames) >= HEADER.size:
                    connection, kind, length = HEADER.unpack_from(frames)
                    if length > MAX_FRAME:
                        raise ValueError("an oversized relay frame")
                    if len(frames) < HEADER.size + length:
                        break
                    data = bytes(frames[HEADER.size : HEADER.size + length])
                    del frames[: HEADER.size + length]
                    await self._frame(connection, kind, data, ready)
        except (asyncio.IncompleteReadError, OSError, ValueError):
            pass
        finally:
            if not ready.done():
                ready.set_exception(ConnectionError("the egress relay did not start"))
            for client in self.clients.values():
                client.reset = True
                with contextlib.suppress(asyncio.QueueFull):
                    client.chunks.put_nowait(None)
            for task in list(self.tasks):
                task.cancel()
            await _closed(self.writer)
            # The SDK's file object holds a reference to the socket, which closing the transport
            # does not drop: the descriptor is only released once that object is closed too.
            with contextlib.suppress(Exception):
                getattr(self.keepalive, "close", lambda: None)()

    async def _frame(
        self, connection: int, kind: int, data: bytes, ready: asyncio.Future[int]
    ) -> None:
        if kind == READY and not ready.done():
            ready.set_result(int(data.decode("ascii") or "0"))
            return
        if kind == OPEN and connection not in self.clients:
            client = RelayedClient(self, connection)
            self.clients[connection] = client
            task = asyncio.ensure_future(self._serve(client))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return
        client_or_none = self.clients.get(connection)
        if client_or_none is None:
            return
        if kind == DATA and data:
            await client_or_none.chunks.put(data)
        elif kind in (EOF, RESET):
            client_or_none.reset = kind == RESET
            await client_or_none.chunks.put(None)

    async def _serve(self, client: RelayedClient) -> None:
        try:
            await self.proxy.serve(client)
        except Exception:
            log.exception("sandbox egress: a proxied connection failed")
            client.abort()
        finally:
            self.clients.pop(client.connection, None)

    def close(self) -> None:
        """Drop the relay and every connection (thread-safe, idempotent)."""
        if self._runner is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop stopped meanwhile
                self.loop.call_soon_threadsafe(self._runner.cancel)


class EgressProxy:
    """The egress proxy of one sandbox worker process: an event loop in a thread of its own,
    serving every relay channel of the worker's containers."""

    def __init__(self, resolver: Resolver = SYSTEM_RESOLVER, connector: Connector = connect_pinned):
        self.resolver = resolver
        self.connector = connector
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=loop.run_forever, name="pasar-sandbox-egress", daemon=True
                )
                self._thread.start()
                self._loop = loop
            return self._loop

    def open_channel(self, sock: object, rules: EgressRules, tool_id: str) -> EgressChannel:
        """Serve the relay on `sock` (the exec's hijacked socket) once it says it listens."""
        raw = getattr(sock, "_sock", sock)
        if not isinstance(raw, socket.socket) or isinstance(raw, ssl.SSLSocket):
            raise SandboxUnavailable(
                "the sandbox egress proxy needs the Docker daemon on a unix socket or plain TCP"
            )
        loop = self._running_loop()
        proxy = Proxy(rules, tool_id, self.resolver, self.connector)
        future = asyncio.run_coroutine_threadsafe(self._open(raw, sock, proxy, loop), loop)
        try:
            return future.result(READY_TIMEOUT_S + 5)
        except (ConnectionError, TimeoutError, OSError) as error:
            future.cancel()
            raise SandboxUnavailable(
                f"{tool_id}: the sandbox egress relay did not start ({type(error).__name__})",
                details={"tool": tool_id},
            ) from None

    async def _open(
        self, raw: socket.socket, sock: object, proxy: Proxy, loop: asyncio.AbstractEventLoop
    ) -> EgressChannel:
        reader, writer = await asyncio.open_connection(sock=raw, limit=2 * MAX_FRAME)
        channel = EgressChannel(proxy, reader, writer, loop, keepalive=sock)
        ready: asyncio.Future[int] = loop.create_future()
        channel._runner = asyncio.ensure_future(channel.run(ready))
        try:
            channel.relay_pid = await asyncio.wait_for(ready, READY_TIMEOUT_S)
        except BaseException:
            channel._runner.cancel()
            raise
        return channel

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):  # a loop that is already stopping
            asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def _cancel_all() -> None:
    """Cancel and await every other task of the proxy's loop (channels, connections)."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
