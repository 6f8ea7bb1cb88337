"""pasar's typed errors in the shape OpenAI's API answers them: `{"error": {"message", "type",
"param", "code"}}`, with the same HTTP status pasar gives them elsewhere (a body that does not
fit the schema is a 400, as OpenAI answers it). A run that did not end with an answer adds
`"pasar": {"execution_id", "status", "auth_url"?}` to the error object, to follow it through
pasar's API."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from pasar_core.errors import PasarError, ValidationFailed
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pasar.rest import errors as rest_errors
from pasar.rest.limits import Handler

log = logging.getLogger("pasar.openai")

TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


class ModelNotFound(PasarError):
    code = "MODEL_NOT_FOUND"
    status = 404

    def __init__(self, model: str) -> None:
        super().__init__(
            f"no agent you may run has the id or name {model[:100]!r} (GET /v1/models lists them)",
            details={"param": "model"},
        )


class RunNotCompleted(PasarError):
    """The run did not end with an answer: sending the request again would start another run,
    so OpenAI clients are told not to retry (`x-should-retry: false`). `details` name the
    execution, which the rest of pasar's API follows (events, approval, consent)."""

    code = "RUN_FAILED"
    status = 502


class RunPaused(RunNotCompleted):
    """Waiting for a tool call's approval or for the user's OAuth consent."""

    code = "RUN_PAUSED"
    status = 409


class RunStillRunning(RunNotCompleted):
    code = "RUN_STILL_RUNNING"
    status = 504


class RunNoLongerFollowed(RunNotCompleted):
    """The server began shutting down (SIGTERM) while it followed the run, which goes on
    (finished here within `PASAR_DRAIN_S`, or handed to another process)."""

    code = "SERVER_SHUTTING_DOWN"
    status = 503


def error_body(
    status: int, code: str, message: str, *, param: str | None = None,
    pasar: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    kind = TYPES.get(status) or ("server_error" if status >= 500 else "invalid_request_error")
    error: dict[str, Any] = {"message": message, "type": kind, "param": param, "code": code}
    if pasar:
        error["pasar"] = pasar
    return {"error": error}


def openai_error(
    status: int, code: str, message: str, *, param: str | None = None,
    headers: dict[str, str] | None = None, pasar: dict[str, Any] | None = None,
) -> JSONResponse:  # fmt: skip
    body = error_body(status, code, message, param=param, pasar=pasar)
    return JSONResponse(body, status_code=status, headers=headers)


def error_of(error: PasarError) -> JSONResponse:
    details = error.details
    status, code, message = error.status, error.code.lower(), error.message
    param = details.get("param") if isinstance(details.get("param"), str) else None
    if isinstance(error, ValidationFailed):
        status = 400
        problems = details.get("errors") or [{}]
        param = str(problems[0].get("path", "/")).strip("/").replace("/", ".") or None
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    retry_after = details.get("retry_after_s")
    if status in (409, 429, 503) and isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)
    pasar = None
    if isinstance(error, RunNotCompleted):
        headers["x-should-retry"] = "false"
        pasar = dict(details)
    return openai_error(status, code, message, param=param, headers=headers, pasar=pasar)


def openai_errors(handler: Handler) -> Handler:
    """`handler` (and the guards in front of it) answering typed errors in OpenAI's shape."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except PasarError as error:
            if error.status >= 500:
                log.error("%s %s failed: %s", request.method, request.url.path, error.message)
            return error_of(error)

    return endpoint


PREFIX = "/v1"


def is_openai_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


async def app_error(request: Request, exc: Exception) -> Response:
    """What the app's exception handlers answer under /v1 (an unknown path, a method the
    route lacks, a failure outside a handler): OpenAI's shape, as the handlers answer."""
    if isinstance(exc, PasarError):
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
        return error_of(exc)
    if isinstance(exc, HTTPException):
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        phrase = HTTPStatus(exc.status_code).phrase
        code = rest_errors.HTTP_CODES.get(exc.status_code, phrase.upper().replace(" ", "_"))
        message = exc.detail if isinstance(exc.detail, str) else phrase
        if exc.status_code == 404 and message == phrase:
            message = f"no such path: {request.method} {request.url.path[:200]}"
        headers = dict(exc.headers or {})
        return openai_error(exc.status_code, code.lower(), message, headers=headers)
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return openai_error(500, "internal", "unexpected server error")


ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


def by_surface(rest: ExceptionHandler) -> ExceptionHandler:
    """The app's exception handler `rest`, except under /v1, which answers in OpenAI's shape."""

    async def handler(request: Request, exc: Exception) -> Response:
        if is_openai_path(request.url.path):
            return await app_error(request, exc)
        return await rest(request, exc)

    return handler
