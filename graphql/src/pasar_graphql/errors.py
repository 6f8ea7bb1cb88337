"""Error formatting: typed `PasarError`s keep their message and code, everything else is masked."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import FieldNode, GraphQLError, GraphQLSyntaxError, OperationType
from graphql.utilities import get_operation_ast
from pasar_core.errors import PasarError, Unavailable
from starlette.responses import Response
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionContext

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
            context = self.execution_context
            _answer_busy(result, getattr(context.context, "response", None), context)

    def on_stream_result(self, result: object) -> Iterator[None]:
        self._streamed = True
        _rewrite(result)
        yield


def _answer_busy(result: object, response: object, context: ExecutionContext) -> None:
    """An HTTP answer is a 503 with Retry-After, as over REST, when an `UNAVAILABLE` error (no
    database connection was free) stopped the request before any of it ran: the client may
    retry the whole operation. When part of it ran (a mutation's earlier field, a query's
    other fields), the answer is a 200 with the errors and whatever data there is: retrying a
    mutation would do its earlier fields twice."""
    if not isinstance(response, Response):
        return
    busy = [
        error
        for error in getattr(result, "errors", None) or ()
        if isinstance(error.original_error, Unavailable)
    ]
    if busy and _nothing_ran(result, busy, context):
        original = busy[0].original_error
        assert isinstance(original, Unavailable)
        response.status_code = original.status
        response.headers["Retry-After"] = str(original.retry_after_s)


def _nothing_ran(result: object, busy: list[GraphQLError], context: ExecutionContext) -> bool:
    refused = {error.path[0] for error in busy if error.path is not None and len(error.path) == 1}
    data = getattr(result, "data", None)
    if data is not None:  # nothing ran when every field was refused
        return bool(data) and all(value is None and key in refused for key, value in data.items())
    document = context.graphql_document
    operation = get_operation_ast(document, context.operation_name) if document else None
    if operation is None:
        return False
    if operation.operation is not OperationType.MUTATION:
        return True  # a query that answered nothing changed nothing
    # Mutation fields run one after the other, and a refused non-null field ends the
    # operation: nothing ran when the first one was refused.
    first = operation.selection_set.selections[0]
    if not isinstance(first, FieldNode) or first.directives:
        return False  # a fragment or a conditional field first: not sure, say what happened
    return (first.alias or first.name).value in refused


def _rewrite(result: object) -> None:
    errors: list[GraphQLError] | None = getattr(result, "errors", None)
    if result is not None and errors:
        result.errors = [format_error(error) for error in errors]  # type: ignore[attr-defined]
