"""One request-body limit for every route, enforced while the body streams in.

`BodyLimit` wraps the app's `receive`. At the first read it refuses a declared Content-Length
over the limit before pulling a single byte; after that it counts the bytes of each chunk
(chunked bodies have no Content-Length). Past the limit, `receive` raises `PayloadTooLarge`,
so the surface that was reading answers its own typed 413 (REST or GraphQL shape), and nothing
more of the body is read: the 413 says `Connection: close`, so the server stops reading too.
If the response has already started, the limit ends the request as a disconnect instead.

A route that needs more (an upload) calls `set_body_limit(request.scope, n)` before it reads.
Websocket messages larger than the limit close the connection with 1009 (message too big).
"""

from __future__ import annotations

from dataclasses import dataclass

from pasar_core.errors import PayloadTooLarge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pasar.rest.errors import error_response

SCOPE_KEY = "pasar.body_limit"
WS_MESSAGE_TOO_BIG = 1009


@dataclass(slots=True)
class Allowance:
    """The limit of one request; in the scope (shared by copies of it) so a route can change it."""

    max_bytes: int


def set_body_limit(scope: Scope, max_bytes: int) -> None:
    """Give this request its own body limit (call before reading the body)."""
    allowance = scope.get(SCOPE_KEY)
    if not isinstance(allowance, Allowance):
        raise RuntimeError("set_body_limit needs the BodyLimit middleware in front of the app")
    allowance.max_bytes = max_bytes


def too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body is larger than {max_bytes} bytes", details={"max_bytes": max_bytes}
    )


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def message_size(message: Message, max_bytes: int) -> int:
    """A websocket message's size in bytes (UTF-8 for text), exact only near `max_bytes`
    (text is encoded only when its length alone cannot decide)."""
    text: str | None = message.get("text")
    if text is None:
        return len(message.get("bytes") or b"")
    if len(text) > max_bytes or len(text) * 4 <= max_bytes:  # a character is 1 to 4 bytes
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


class BodyLimit:
    """Pure ASGI middleware: see the module docstring."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await _HttpRequest(self.app, scope, receive, send, self.max_bytes).run()
        elif scope["type"] == "websocket":
            await _WebSocket(self.app, scope, receive, send, self.max_bytes).run()
        else:
            await self.app(scope, receive, send)


class _HttpRequest:
    def __init__(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, max_bytes: int
    ) -> None:
        self.app, self.scope, self._receive, self._send = app, scope, receive, send
        self.allowance = Allowance(max_bytes)
        scope[SCOPE_KEY] = self.allowance
        self.declared = declared_length(scope)
        self.received = 0
        self.first_read = True
        self.refused: PayloadTooLarge | None = None
        self.response_started = False

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except PayloadTooLarge as error:
            # A surface without its own error mapping let the refusal through.
            if error is not self.refused or self.response_started:
                raise
            response = error_response(413, error.code, error.message, error.details)
            await response(self.scope, self.receive, self.send)

    async def receive(self) -> Message:
        limit = self.allowance.max_bytes
        if self.refused is None and self.first_read:
            self.first_read = False
            if self.declared is not None and self.declared > limit:
                self.refused = too_large(limit)
        if self.refused is None:
            message = await self._receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > limit:
                    self.refused = too_large(limit)
            if self.refused is None:
                return message
        if self.response_started:
            return {"type": "http.disconnect"}
        raise self.refused

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.response_started = True
            over = self.declared is not None and self.declared > self.allowance.max_bytes
            if self.refused is not None or over:
                # The rest of the body stays unread: end the connection instead of draining it.
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await self._send(message)


class _WebSocket:
    def __init__(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, max_bytes: int
    ) -> None:
        self.app, self.scope, self._receive, self._send = app, scope, receive, send
        self.max_bytes = max_bytes
        self.closed = False

    async def run(self) -> None:
        await self.app(self.scope, self.receive, self.send)

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] != "websocket.receive" or self.closed:
            return message
        if message_size(message, self.max_bytes) <= self.max_bytes:
            return message
        self.closed = True
        reason = f"message larger than {self.max_bytes} bytes"
        await self._send({"type": "websocket.close", "code": WS_MESSAGE_TOO_BIG, "reason": reason})
        return {"type": "websocket.disconnect", "code": WS_MESSAGE_TOO_BIG}

    async def send(self, message: Message) -> None:
        if not self.closed:  # after our close, the app's messages have nowhere to go
            await self._send(message)
