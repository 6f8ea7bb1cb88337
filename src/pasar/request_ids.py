"""`X-Request-ID`: every request has one, in its log lines and echoed in the response.

A caller's (or a gateway's) id is kept only when it is short printable ASCII with no spaces;
anything else (too long, control characters, non-ASCII) is replaced by a fresh id, so a header
cannot forge log lines or carry a payload into them."""

from __future__ import annotations

import re
import uuid

from pasar_core.observability.context import REQUEST_ID, bound
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
MAX_LENGTH = 64
ACCEPTED = re.compile(rf"[\x21-\x7e]{{1,{MAX_LENGTH}}}")


def request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == HEADER.encode():
            text = value.decode("latin-1")
            return text if ACCEPTED.fullmatch(text) else uuid.uuid4().hex
    return uuid.uuid4().hex


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        current = request_id(scope)
        scope.setdefault("state", {})["request_id"] = current

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = current
            await send(message)

        with bound(REQUEST_ID, current):
            await self.app(scope, receive, with_header)
