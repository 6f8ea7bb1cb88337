"""Transports to MCP servers a user aims (an owner's `mcp` custom tools): every connection
passes the SSRF guard (`pasar_core.net`).

The SDK's streamable HTTP client speaks httpx2; its client here gets a transport whose only way
out is the guard's pinned addresses (as `pasar_core.net.client.PinnedTransport` does for httpx),
checked again at every (re)connection, so a name that later resolves elsewhere cannot move it.
Redirects are the SDK's: followed only within the endpoint's origin, on the same pinned pool.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any

import httpcore2
import httpx2
from mcp.client.streamable_http import streamable_http_client

from pasar_core.mcp.connection import Streams
from pasar_core.net.client import MAX_ADDRESSES_TRIED
from pasar_core.net.guard import AllowList, Pinned, guard
from pasar_core.net.resolver import Resolver

HTTP_TIMEOUT_S = 30.0


class PinnedBackend2(httpcore2.AsyncNetworkBackend):
    """httpcore2's network backend that dials only the guard's addresses for its host:port."""

    def __init__(self, pinned: Pinned) -> None:
        self._pinned = pinned
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2's backend interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        target = self._pinned.target
        if host != target.url.raw_host.decode("ascii") or port != target.port:
            raise httpcore2.ConnectError(f"refusing an unpinned connection to {host}:{port}")
        last_error: Exception = httpcore2.ConnectError("no address to connect to")
        for address in self._pinned.addresses[:MAX_ADDRESSES_TRIED]:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout,
                    local_address=local_address, socket_options=socket_options,
                )  # fmt: skip
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as error:
                last_error = error
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2's backend interface)
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("unix sockets are never used for MCP servers")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Body(httpx2.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class PinnedTransport2(httpx2.AsyncBaseTransport):
    """An httpx2 transport over an httpcore2 pool whose only way out is a `PinnedBackend2`."""

    def __init__(self, pinned: Pinned, ssl_context: ssl.SSLContext | None = None) -> None:
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context or ssl.create_default_context(),
            max_connections=4, http1=True, http2=False, network_backend=PinnedBackend2(pinned),
        )  # fmt: skip

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if not isinstance(request.stream, httpx2.AsyncByteStream):
            raise TypeError("PinnedTransport2 needs an async request stream")
        core_request = httpcore2.Request(
            method=request.method,
            url=httpcore2.URL(
                scheme=request.url.raw_scheme, host=request.url.raw_host,
                port=request.url.port, target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions={"timeout": request.extensions.get("timeout", {})},
        )  # fmt: skip
        response = await self._pool.handle_async_request(core_request)
        if not isinstance(response.stream, AsyncIterable):
            raise TypeError("httpcore2 returned a sync stream")
        return httpx2.Response(
            status_code=response.status, headers=response.headers,
            stream=_Body(response.stream), extensions=response.extensions,
        )  # fmt: skip

    async def aclose(self) -> None:
        await self._pool.aclose()


def guarded_transport(
    url: str, headers: Mapping[str, str], allow: AllowList, resolver: Resolver, timeout_s: float
) -> Any:
    """Fresh transport streams to `url`, guarded (and pinned) at every connection."""

    @contextlib.asynccontextmanager
    async def open_streams() -> AsyncIterator[Streams]:
        pinned = await guard(url, allow, resolver)  # TargetRefused before any connection
        timeout = httpx2.Timeout(HTTP_TIMEOUT_S, read=max(timeout_s, HTTP_TIMEOUT_S) + 5)
        async with (
            httpx2.AsyncClient(
                headers=dict(headers), timeout=timeout, trust_env=False,
                transport=PinnedTransport2(pinned),
            ) as client,
            streamable_http_client(url, http_client=client) as streams,
        ):  # fmt: skip
            yield streams

    return open_streams
