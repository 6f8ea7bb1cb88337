"""What a client sends to /graphql, checked before Strawberry reads it, and request errors.

HTTP bodies, the GET path's `variables`/`extensions` and websocket messages are all decoded by
`pasar_core.json_input.decode_json` (bounded nesting, finite numbers, unique keys). Strawberry
indexes into what it decoded, so each must also have the shape its reader expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from pasar_core.errors import BadRequest
from pasar_core.json_input import MalformedJson, decode_json
from starlette.responses import JSONResponse

_OPERATION_MESSAGES = frozenset({"subscribe", "start"})  # graphql-transport-ws, graphql-ws
_ID_MESSAGES = _OPERATION_MESSAGES | {"complete", "stop"}
_BATCH_FIELDS = (("query", str), ("variables", dict), ("extensions", dict), ("operationName", str))


def decode_http_json(data: str | bytes) -> dict[str, Any] | list[Any]:
    """A JSON body or query parameter: an object, or a list of them (a batch: each item must
    be an object with the field types Strawberry reads, as it indexes into them)."""
    value = decode_json(data)
    if isinstance(value, list):
        if not value:
            raise BadRequest("a batch needs at least one operation")
        if not all(isinstance(item, dict) for item in value):
            raise BadRequest("each operation of a batch must be a JSON object")
        for item in value:  # Strawberry checks these for one operation, not in a batch
            for name, kind in _BATCH_FIELDS:
                if not isinstance(item.get(name), (kind, type(None))):
                    raise BadRequest(f"each operation's {name!r} must be a {kind.__name__} or null")
        return value
    if not isinstance(value, dict):
        raise BadRequest("expected a JSON object (a GraphQL request: query, variables, ...)")
    return value


def decode_ws_message(data: str | bytes) -> dict[str, Any]:
    """A websocket protocol message, `MalformedJson` unless it has the fields its type needs."""
    message = decode_json(data)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise MalformedJson("a message must be an object with a string 'type'")
    kind = message["type"]
    if kind in _ID_MESSAGES and not isinstance(message.get("id"), str):
        raise MalformedJson(f"a {kind!r} message needs a string 'id'")
    if kind in _OPERATION_MESSAGES:
        check_operation(message.get("payload"))
    return message


def check_operation(payload: object) -> None:
    if not isinstance(payload, dict):
        raise MalformedJson("an operation's payload must be an object")
    if not isinstance(payload.get("query"), str):
        raise MalformedJson("an operation needs a string 'query'")
    for name, kind in (("variables", dict), ("extensions", dict), ("operationName", str)):
        if not isinstance(payload.get(name), (kind, type(None))):
            raise MalformedJson(f"an operation's {name!r} must be a {kind.__name__} or null")


def request_error(
    status: int, code: str, message: str, details: Mapping[str, Any] | None = None
) -> JSONResponse:
    """A request error as GraphQL over HTTP answers it: `errors`, no `data`."""
    error = {"message": message, "extensions": {**(details or {}), "code": code}}
    return JSONResponse({"errors": [error]}, status_code=status)


def http_code(status: int) -> str:
    """`BAD_REQUEST` for 400, and so on (Strawberry's own refusals carry a status only)."""
    try:
        return HTTPStatus(status).phrase.upper().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "BAD_REQUEST"
