"""Strict content types: a POST, PUT or PATCH with a body must send it as JSON
(`Content-Type: application/json`), or it is refused with 415 before the route reads it, also
by routes that would ignore the body. Checked in front of every REST handler, after the caller
is authenticated (a stranger gets 401 first, as everywhere). The consent sign-in form is the
exception; GraphQL has its own transports."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.limits import Handler
from pasar.rest.requests import UnsupportedMediaType, caller

METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON = "application/json"


def exempt(path: str) -> bool:
    return path.startswith("/auth/") and path.endswith("/start")


def has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in request.headers


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def json_only(handler: Handler, *, signed_in: bool) -> Handler:
    async def endpoint(request: Request) -> Response:
        if signed_in:
            await caller(request)
        if has_body(request) and media_type(request) != JSON:
            raise UnsupportedMediaType("send the body as JSON with Content-Type: application/json")
        return await handler(request)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint
