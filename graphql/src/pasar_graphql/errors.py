"""Error formatting: typed `PasarError`s keep their message and code, everything else is masked."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from pasar_core.errors import PasarError, Unavailable
from starlette.responses import Response
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

log = logging.getLogger("pasar.graphql")

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
INTERNAL = "INTERNAL"
BAD_REQUEST = "BAD_REQUEST"
# The request asks for what this transport does not run: a query over graphql-ws, a mutation
# over GET, an operation name that is not in the document (Strawberry's own exceptions).
REQUEST_ERRORS = (InvalidOperationTypeError, CannotGetOperationTypeError, MissingQueryError)
MASKED_MESSAGE = "Unexpected error."


def error_code(error: GraphQLError) -> str:
    """The `extensions.code` a client sees for `error`."""
    original = error.original_error
    if isinstance(original, PasarError):
        return original.code
    if isinstance(original, REQUEST_ERRORS):
        return BAD_REQUEST
    if isinstance(error, GraphQLSyntaxError):
        return PARSE_FAILED
    if error.path is None and (original is None or isinstance(original, GraphQLError)):
        # Raised by graphql-core before execution: validation rules (including the depth and
        # alias limits), variable coercion, unknown operation names.
        return VALIDATION_FAILED
    return INTERNAL


def is_expected(error: GraphQLError) -> bool:
    """Whether `error` is the client's doing (not worth an error log)."""
    original = error.original_error
    if isinstance(original, PasarError):
        return original.status < 500
    return error_code(error) != INTERNAL


def format_error(error: GraphQLError) -> GraphQLError:
    """A copy of `error` carrying `extensions.code`; unexpected errors lose message and cause."""
    code = error_code(error)
    original = error.original_error
    extensions: dict[str, Any]
    if isinstance(original, PasarError):
        message, extensions = original.message, {**original.details, "code": code}
    elif code == INTERNAL:
        message, extensions, original = MASKED_MESSAGE, {"code": code}, None
    else:
        message, extensions = error.message, {**(error.extensions or {}), "code": code}
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original,
        extensions=extensions,
    )


def log_errors(errors: list[GraphQLError]) -> None:
    """Log unexpected errors with their traceback; client mistakes are not logged."""
    for error in errors:
        if not is_expected(error):
            cause = error.original_error or error
            log.error("GraphQL error at %s: %s", error.path, error.message, exc_info=cause)


class PasarErrors(SchemaExtension):
    """Rewrites every error of an operation's result with `format_error` (replaces MaskErrors):
    once at the end of an HTTP operation, and per result for streaming transports (websocket
    subscriptions and operations), which send each result before the operation ends."""

    def on_operation(self) -> Iterator[None]:
        self._streamed = False
        yield
        if not self._streamed:  # a streamed result was rewritten before it was sent
            result = self.execution_context.result
            _rewrite(result)
            _answer_busy(result, getattr(self.execution_context.context, "response", None))

    def on_stream_result(self, result: object) -> Iterator[None]:
        self._streamed = True
        _rewrite(result)
        yield


def _answer_busy(result: object, response: object) -> None:
    """An HTTP answer with an `UNAVAILABLE` error (no database connection was free) is a 503
    with Retry-After, as over REST: the client should retry the whole operation."""
    if not isinstance(response, Response):
        return
    for error in getattr(result, "errors", None) or ():
        original = error.original_error
        if isinstance(original, Unavailable):
            response.status_code = original.status
            response.headers["Retry-After"] = str(original.retry_after_s)
            return


def _rewrite(result: object) -> None:
    errors: list[GraphQLError] | None = getattr(result, "errors", None)
    if result is not None and errors:
        result.errors = [format_error(error) for error in errors]  # type: ignore[attr-defined]
