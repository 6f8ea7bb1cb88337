"""HTTP with the guard on every hop: pinned connections, manual redirects, capped bodies and time.

Each hop is guarded (`pasar_core.net.guard.guard`: one resolution, every address checked) and then sent
through a fresh `PinnedTransport`, whose network backend dials only the guard's addresses for that
hop's host and port and never resolves a name. The URL keeps its host name, so the Host header, TLS
SNI and certificate verification all use the original name while the socket goes to the checked IP.
A resolver that answers public first and private later (DNS rebinding) therefore cannot move the
connection: there is no second lookup.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from pasar_core.errors import ToolError
from pasar_core.net.guard import AllowList, Pinned, TargetRefused, guard
from pasar_core.net.resolver import Resolver
from pasar_core.net.tls import verifying_context

MAX_REDIRECTS = 5

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
SAFE_ACROSS_ORIGINS = frozenset({"accept", "accept-language", "user-agent", "content-type"})
"""The only caller headers a redirect to another origin keeps (credentials never follow)."""

NETWORK_ERRORS: tuple[type[Exception], ...] = (
    httpx.HTTPError,
    httpx.StreamError,
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
)
TIMEOUT_ERRORS: tuple[type[Exception], ...] = (httpx.TimeoutException, httpcore.TimeoutException)
MAX_ADDRESSES_TRIED = 4


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that dials only a hop's checked addresses, and only for its host:port."""

    def __init__(self, pinned: Pinned, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._pinned = pinned
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        target = self._pinned.target
        if host != target.url.raw_host.decode("ascii") or port != target.port:
            raise httpcore.ConnectError(f"refusing an unpinned connection to {host}:{port}")
        last_error: Exception = httpcore.ConnectError("no address to connect to")
        for address in self._pinned.addresses[:MAX_ADDRESSES_TRIED]:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are never used by the web tools")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool whose only way out is a `PinnedBackend`."""

    def __init__(
        self,
        pinned: Pinned,
        *,
        ssl_context: ssl.SSLContext | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or verifying_context(),
            max_connections=1,
            http1=True,
            http2=False,
            network_backend=PinnedBackend(pinned, inner),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.AsyncByteStream):
            raise TypeError("PinnedTransport needs an async request stream")
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions={"timeout": request.extensions.get("timeout", {})},  # never sni_hostname
        )
        response = await self._pool.handle_async_request(core_request)
        if not isinstance(response.stream, AsyncIterable):
            raise TypeError("httpcore returned a sync stream")
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One request as the caller asked for it (headers already checked by the tool)."""

    method: str
    url: str
    headers: Mapping[str, str]
    content: bytes | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """The final response of a redirect chain, its body capped at `max_bytes`."""

    url: str
    status: int
    headers: httpx.Headers
    body: bytes
    truncated: bool
    redirects: tuple[str, ...]
    peer: str | None = None
    """The IP address the final connection went to (as the socket reports it)."""

    @property
    def content_type(self) -> str:
        return str(self.headers.get("content-type", ""))


@dataclass(frozen=True, slots=True)
class Options:
    """Everything that bounds one tool call's HTTP."""

    allow: AllowList
    resolver: Resolver
    max_bytes: int
    timeout_s: float
    user_agent: str
    ssl_context: ssl.SSLContext | None = None
    """Certificate checks for https (default: httpx's, with certifi's CA bundle)."""
    inner_backend: httpcore.AsyncNetworkBackend | None = None
    """What actually dials the pinned addresses (default: httpcore's AnyIO backend)."""


def _peer(response: httpx.Response) -> str | None:
    stream = response.extensions.get("network_stream")
    address = stream.get_extra_info("server_addr") if stream is not None else None
    if isinstance(address, tuple) and address:
        try:
            return str(ipaddress.ip_address(address[0]))
        except ValueError:
            return None
    return None


async def _read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        room = max_bytes - len(body)
        if len(chunk) > room:
            body += chunk[:room]
            return bytes(body), True
        body += chunk
    return bytes(body), False


def _next_request(
    current: Outgoing, status: int, location: httpx.URL, same_origin: bool
) -> Outgoing:
    method, content = current.method, current.content
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, content = "GET", None
    headers = dict(current.headers)
    if content is None:
        headers = {name: value for name, value in headers.items() if name != "content-type"}
    if not same_origin:
        headers = {name: value for name, value in headers.items() if name in SAFE_ACROSS_ORIGINS}
    return Outgoing(method=method, url=str(location), headers=headers, content=content)


@contextlib.asynccontextmanager
async def _hop(
    pinned: Pinned, request: Outgoing, options: Options
) -> AsyncIterator[httpx.Response]:
    transport = PinnedTransport(
        pinned, ssl_context=options.ssl_context, inner=options.inner_backend
    )
    headers = {"user-agent": options.user_agent, "accept-encoding": "gzip, deflate"}
    headers.update(request.headers)
    async with httpx.AsyncClient(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(options.timeout_s),
    ) as client:
        outgoing = client.build_request(
            request.method, pinned.target.url, headers=headers, content=request.content
        )
        response = await client.send(outgoing, stream=True)
        try:
            yield response
        finally:
            await response.aclose()


async def _follow(
    request: Outgoing,
    options: Options,
    check_response: Callable[[httpx.Response], None] | None,
) -> Fetched:
    redirects: list[str] = []
    same_origin = True
    for hop in range(MAX_REDIRECTS + 1):
        pinned = await guard(request.url, options.allow, options.resolver)
        async with _hop(pinned, request, options) as response:
            location = response.headers.get("location")
            if response.status_code in REDIRECT_STATUSES and location is not None:
                if hop == MAX_REDIRECTS:
                    raise ToolError(
                        f"more than {MAX_REDIRECTS} redirects, last to {location[:200]}",
                        details={"redirects": redirects},
                    )
                try:
                    next_url = pinned.target.url.join(location)
                except (httpx.InvalidURL, ValueError, TypeError) as error:
                    raise TargetRefused(location, f"bad redirect location ({error})") from None
                redirects.append(str(next_url))
                next_target = next_url.copy_with(fragment=None)
                same_origin = same_origin and (
                    next_target.scheme == pinned.target.url.scheme
                    and next_target.raw_host == pinned.target.url.raw_host
                    and next_target.port == pinned.target.url.port
                )
                request = _next_request(request, response.status_code, next_url, same_origin)
                continue
            if check_response is not None:
                check_response(response)
            body, truncated = await _read_capped(response, options.max_bytes)
            return Fetched(
                url=str(pinned.target.url),
                status=response.status_code,
                headers=response.headers,
                body=body,
                truncated=truncated,
                redirects=tuple(redirects),
                peer=_peer(response),
            )
    raise AssertionError("unreachable")  # pragma: no cover


async def send(
    request: Outgoing,
    options: Options,
    *,
    check_response: Callable[[httpx.Response], None] | None = None,
) -> Fetched:
    """Send `request`, following up to 5 redirects, each hop guarded; bounded in bytes and time.

    `check_response` sees the final response's status and headers before its body is read and may
    raise `ToolError` (for example on a binary content type) so nothing more is downloaded.
    """
    try:
        async with asyncio.timeout(options.timeout_s):
            return await _follow(request, options, check_response)
    except TimeoutError:
        raise ToolError(
            f"{request.method} {request.url[:200]} did not finish within {options.timeout_s:g} s",
            details={"url": request.url[:200]},
        ) from None
    except TIMEOUT_ERRORS as error:
        raise ToolError(
            f"{request.method} {request.url[:200]} timed out ({type(error).__name__})"
        ) from None
    except NETWORK_ERRORS as error:
        raise ToolError(
            f"{request.method} {request.url[:200]} failed: {error or type(error).__name__}"
        ) from None


def shown_headers(headers: httpx.Headers, *, drop: frozenset[str], limit: int) -> dict[str, Any]:
    """Response headers a model may read: lowercase names, repeated ones joined, some dropped."""
    shown: dict[str, str] = {}
    for name, value in headers.multi_items():
        key = name.lower()
        if key in drop:
            continue
        if key in shown:
            shown[key] = f"{shown[key]}, {value}"
        elif len(shown) < limit:
            shown[key] = value
    return dict(shown)
