"""One kept-alive MCP session per server and process, reopened when it breaks.

A session of the official SDK is an anyio context (task groups): it must be entered and left
by one task. A background task per connection holds it open; calls from any task share it
(the SDK correlates concurrent requests). The end of the server's stream (a stdio server that
died, an HTTP transport that gave up) marks the session dead at once, so the next call opens
a new one instead of failing on the old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import anyio
import mcp_types as types
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types import CONNECTION_CLOSED
from pydantic import ValidationError

from pasar_core.errors import PasarError
from pasar_core.mcp.errors import McpServerUnavailable, McpToolFailed

log = logging.getLogger("pasar.mcp")

Streams = tuple[Any, Any]
OpenTransport = Callable[[], AbstractAsyncContextManager[Streams]]

CONNECT_TIMEOUT_S = 30.0
MAX_TOOL_PAGES = 50
SESSION_GONE = "Session terminated"


class _EndWatch:
    """The transport's read stream, noting when it ends (the peer went away)."""

    def __init__(self, inner: Any, ended: asyncio.Event) -> None:
        self._inner = inner
        self._ended = ended

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            item: SessionMessage | Exception = await self._inner.receive()
        except BaseException:
            self._ended.set()
            raise
        return item

    async def aclose(self) -> None:
        self._ended.set()
        await self._inner.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


@dataclass(slots=True)
class _Live:
    session: ClientSession
    ended: asyncio.Event
    stop: asyncio.Event
    task: asyncio.Task[None]
    initialized: types.InitializeResult | None = None

    @property
    def dead(self) -> bool:
        return self.ended.is_set() or self.task.done()


@dataclass(slots=True)
class McpConnection:
    """The session with server `name`; `open_transport` gives fresh transport streams."""

    name: str
    open_transport: OpenTransport
    _live: _Live | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    opened: int = 0
    """How many sessions this connection opened (the first, and each reconnection)."""

    async def list_tools(self) -> list[types.Tool]:
        """Every tool the server lists (all pages)."""
        session = await self._session()
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(MAX_TOOL_PAGES):
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    page = await session.list_tools(params=params)
            except TimeoutError:
                raise McpServerUnavailable(self.name, "no answer to tools/list") from None
            except MCPError as error:
                raise McpToolFailed(self.name, "tools/list", error.error.message) from None
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    async def call_tool(
        self, name: str, arguments: dict[str, Any], *, may_repeat: bool
    ) -> types.CallToolResult:
        """Call `name`. A call the server may have run is never sent twice unless `may_repeat`
        (a read-only tool); one the server refused unseen (its session expired) is resent once
        on a new session."""
        for attempt in range(2):
            live = await self._live_session()
            try:
                return await live.session.call_tool(name, arguments)
            except MCPError as error:
                gone = error.error.code == CONNECTION_CLOSED
                expired = error.error.message == SESSION_GONE
                if not (gone or expired):
                    raise McpToolFailed(self.name, name, error.error.message) from None
                await self._discard(live)
                if attempt == 0 and (expired or may_repeat):
                    continue
                raise McpServerUnavailable(
                    self.name, "the connection broke during the call (not repeated)"
                ) from None
            except (RuntimeError, ValidationError) as error:  # the SDK's checks of the answer
                raise McpToolFailed(
                    self.name, name, f"a malformed answer: {_reason(error)}"
                ) from None
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as error:
                await self._discard(live)
                raise McpServerUnavailable(self.name, _reason(error)) from None
        raise McpServerUnavailable(self.name, "the call could not be delivered")

    async def close(self) -> None:
        async with self._lock:
            if self._live is not None:
                await self._end(self._live)
                self._live = None

    async def _session(self) -> ClientSession:
        return (await self._live_session()).session

    async def _live_session(self) -> _Live:
        async with self._lock:
            if self._live is None or self._live.dead:
                if self._live is not None:
                    log.warning("MCP server %s: session lost, reconnecting", self.name)
                    await self._end(self._live)
                    self._live = None
                self._live = await self._open()
            return self._live

    async def _discard(self, live: _Live) -> None:
        async with self._lock:
            if self._live is live:
                self._live = None
        await self._end(live)

    async def _open(self) -> _Live:
        ready: asyncio.Future[_Live] = asyncio.get_running_loop().create_future()
        stop, ended = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(self._hold(ready, stop, ended), name=f"pasar-mcp-{self.name}")
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                live = await asyncio.shield(ready)
        except TimeoutError:
            stop.set()
            task.cancel()
            raise McpServerUnavailable(self.name, "no answer to the MCP handshake") from None
        except PasarError:  # McpServerUnavailable, the SSRF guard's TargetRefused
            raise
        except Exception as error:
            raise McpServerUnavailable(self.name, _reason(error)) from None
        self.opened += 1
        return live

    async def _hold(
        self, ready: asyncio.Future[_Live], stop: asyncio.Event, ended: asyncio.Event
    ) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self.open_transport())
                # No per-request timeout here: each call is bounded by its tool's `timeout_s`
                # (the registry), the handshake by CONNECT_TIMEOUT_S.
                session = await stack.enter_async_context(
                    ClientSession(_EndWatch(read, ended), write)
                )
                live = _Live(session, ended, stop, asyncio.current_task())  # type: ignore[arg-type]
                live.initialized = await session.initialize()
                ready.set_result(live)
                await _first(stop.wait(), ended.wait())
        except BaseException as error:
            ended.set()
            if not ready.done():
                ready.set_exception(
                    error if isinstance(error, Exception) else RuntimeError("cancelled")
                )
            elif not stop.is_set():
                log.warning("MCP server %s: session ended: %s", self.name, _reason(error))
            if not isinstance(error, Exception):
                raise

    async def _end(self, live: _Live) -> None:
        live.stop.set()
        if not live.task.done():
            try:
                async with asyncio.timeout(5):
                    await asyncio.shield(live.task)
            except TimeoutError:
                live.task.cancel()
            except Exception:  # noqa: S110 - the session is being dropped; _hold logged it
                pass


async def _first(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _reason(error: BaseException) -> str:
    """One line naming what failed, without the trace (and never a header's value)."""
    inner = error
    while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
        inner = inner.exceptions[0]
    text = str(inner).splitlines()[0] if str(inner) else ""
    return f"{type(inner).__name__}: {text[:300]}" if text else type(inner).__name__
