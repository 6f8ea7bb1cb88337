"""Strict content types: a POST, PUT or PATCH with a body must send it as JSON
(`Content-Type: application/json`), or it is refused with 415 before any route reads it, also
by routes that would ignore the body. GraphQL (its own transports) and the consent sign-in form
are the exceptions."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from pasar.rest.errors import error_response

METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON = "application/json"


def exempt(path: str) -> bool:
    return path == "/graphql" or (path.startswith("/auth/") and path.endswith("/start"))


def has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return b"transfer-encoding" in headers


def media_type(headers: dict[bytes, bytes]) -> str:
    return headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()


class StrictContentTypes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in METHODS and not exempt(scope["path"]):
            headers = dict(scope["headers"])
            if has_body(headers) and media_type(headers) != JSON:
                response = error_response(
                    415, "UNSUPPORTED_MEDIA_TYPE",
                    "send the body as JSON with Content-Type: application/json",
                )  # fmt: skip
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
