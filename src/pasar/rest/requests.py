"""Reading what a client sent: JSON bodies, query parameters and the caller."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from pasar_core.accounts.credentials import credential_from_headers
from pasar_core.accounts.principal import Principal
from pasar_core.accounts.service import authenticate
from pasar_core.accounts.sources import client_source
from pasar_core.errors import BadRequest, PasarError, Unauthenticated
from pasar_core.executions.runtime import Runs
from pasar_core.json_input import decode_json
from pasar_core.schemas import parse_model
from pasar_core.services import Services
from pydantic import BaseModel
from starlette.requests import HTTPConnection, Request

ModelT = TypeVar("ModelT", bound=BaseModel)


class UnsupportedMediaType(PasarError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415


def services_of(connection: HTTPConnection) -> Services:
    services: Services = connection.state.services
    return services


def runs_of(connection: HTTPConnection) -> Runs:
    """The process's execution runtime (see `pasar_core.executions.runtime`)."""
    runs: Runs = connection.state.runs
    return runs


async def read_json(request: Request) -> Any:
    """The body as JSON, refusing wrong media types and malformed JSON. The size is bounded
    while it streams in, for every route, by `pasar.body_limit.BodyLimit`."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType("send the body as JSON with Content-Type: application/json")
    return decode_json(await request.body())


async def read_model(request: Request, model: type[ModelT]) -> ModelT:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return parse_model(model, data, what="body", strict=True)


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be an integer") from None
    if not low <= value <= high:
        raise BadRequest(f"query parameter {name!r} must be between {low} and {high}")
    return value


async def caller(request: Request) -> Principal:
    """The authenticated user, from `Authorization: Bearer` or `X-API-Key` (once per request:
    the route's policy guard or the rate limit in front of the handler may have resolved it
    already)."""
    known: Principal | None = request.scope.get("pasar.principal")
    if known is not None:
        return known
    credential = credential_from_headers(request.headers)
    if credential is None:
        raise Unauthenticated("authentication required: send Authorization: Bearer <token>")
    principal = await authenticate(services_of(request), credential)
    request.scope["pasar.principal"] = principal
    return principal


async def located_caller(request: Request) -> Principal:
    """`caller` with the client's address, which audit rows and rate limits need (resolved
    for requests that write; reads skip its cost)."""
    principal = await caller(request)
    if principal.source is None:
        principal = dataclasses.replace(principal, source=source_of(request))
        request.scope["pasar.principal"] = principal
    return principal


def source_of(connection: HTTPConnection) -> str:
    """The client's address for rate limits: the connection's peer, or the client named by
    `X-Forwarded-For` when the peer is a trusted proxy (`PASAR_TRUSTED_PROXIES`)."""
    settings = services_of(connection).settings
    return client_source(
        connection.client.host if connection.client else None,
        connection.headers.getlist("x-forwarded-for"),
        settings.trusted_proxies,
    )
