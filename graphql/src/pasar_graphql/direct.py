"""Plain JSON queries answered without Strawberry's HTTP view and `Schema.execute`.

Most requests are `POST /graphql` with a JSON `{query, variables, operationName}` body whose
document is already parsed and validated in the schema's `DocumentCache`. For those, Strawberry
adds per request: its request adapter and content negotiation, and around graphql-core an
extensions runner that wraps every hook of every extension in a context manager and an exit
stack, a middleware manager, and the parse and validation steps the cache already answers
(measured in bench/: about a third of `agent(id)`'s CPU). `answer_directly` answers such a
request itself:

- with the same extension instances (`schema.get_extensions()`), their `on_operation`,
  `on_parse`, `on_validate` and `on_execute` hooks run in Strawberry's order (entered in order,
  left in reverse), so the metrics, tracing, cost limit, rate limits, error formatting and
  busy answers are the extensions' own code, not a copy;
- with graphql-core's `execute` on `schema._schema`, the schema's execution context class and
  `Schema.process_errors`, as `Schema.execute` calls them;
- with the view's own `get_context`, `get_sub_response`, `process_result` and
  `create_response`, so status codes and headers come from the same code.

Anything else is left to Strawberry (it returns None): GET, another content type, a streaming
`Accept`, a batch, a body or field of the wrong shape, a document not cached or cached with
errors, an operation that is not a query or is not found, a document that names `__schema` or
`__type` (introspection is decided per caller), and a schema whose extensions implement a hook
this runner does not drive (`resolve`, `get_results`, a hook that is not a generator).
`tests/test_graphql_direct.py` sends the same requests both ways and compares the answers.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, OperationType
from graphql.utilities import get_operation_ast
from starlette.requests import Request
from starlette.responses import Response
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.extensions import SchemaExtension
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.schema.schema import (
    Schema,
    _coerce_error,
    _parse_operation_document,
    _run_validation,
)
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType as StrawberryOperationType
from strawberry.utils.await_maybe import await_maybe

from pasar_graphql.documents import DocumentCache
from pasar_graphql.production import INTROSPECTION_FIELD

if TYPE_CHECKING:
    from pasar_graphql.app import PasarGraphQL

STAGES = ("on_operation", "on_parse", "on_validate", "on_execute")
ALLOWED_OVER_POST = StrawberryOperationType.from_http("POST")
_BODY_FIELDS = (("variables", dict), ("extensions", dict), ("operationName", str))
Entered = list[Generator[None, None, None] | AsyncGenerator[None, None]]


def extension_hooks(extension_class: type[SchemaExtension]) -> dict[str, bool] | None:
    """The stages `extension_class` hooks into, each True when its hook is an async
    generator; None when it has a hook this runner does not drive."""
    for name in ("resolve", "get_results"):  # on_stream_result: never called by `execute`
        if getattr(extension_class, name) is not getattr(SchemaExtension, name):
            return None
    hooks: dict[str, bool] = {}
    for stage in STAGES:
        hook = getattr(extension_class, stage)
        if hook is getattr(SchemaExtension, stage):
            continue
        if inspect.isasyncgenfunction(hook):
            hooks[stage] = True
        elif inspect.isgeneratorfunction(hook):
            hooks[stage] = False
        else:
            return None
    return hooks


def _request_fields(data: object) -> tuple[str, dict[str, Any] | None, str | None, Any] | None:
    """(query, variables, operationName, extensions) of a single operation of the types
    Strawberry accepts, else None."""
    if not isinstance(data, dict) or not isinstance(data.get("query"), str):
        return None
    for name, kind in _BODY_FIELDS:
        if not isinstance(data.get(name), (kind, type(None))):
            return None
    return data["query"], data.get("variables"), data.get("operationName"), data.get("extensions")


async def answer_directly(view: PasarGraphQL, request: Request) -> Response | None:
    """The response to a plain cached query (see the module docstring), None for Strawberry."""
    schema = view.schema
    documents = getattr(schema, "documents", None)
    if request.method != "POST" or not isinstance(schema, Schema):
        return None
    if not isinstance(documents, DocumentCache):
        return None
    content_type, _ = parse_content_type(request.headers.get("content-type", ""))
    if "application/json" not in content_type:
        return None
    if view._get_stream_transport_from_headers(request.headers) is not None:
        return None
    body = await request.body()  # Starlette keeps it for Strawberry if this falls back
    try:
        fields = _request_fields(view.parse_json(body))
    except Exception:  # Strawberry decodes it again and answers the error
        return None
    if fields is None:
        return None
    query, variables, operation_name, operation_extensions = fields
    checked = documents.cached(query)
    if checked is None or checked.errors or INTROSPECTION_FIELD.search(query):
        return None
    operation = get_operation_ast(checked.document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return None
    extensions = schema.get_extensions()
    known = view.extension_hooks
    hooks = [
        known[kind]
        if (kind := type(extension)) in known
        else known.setdefault(kind, extension_hooks(kind))
        for extension in extensions
    ]
    if any(found is None for found in hooks):
        return None

    sub_response = await view.get_sub_response(request)
    context = await view.get_context(request, response=sub_response)
    execution = schema._create_execution_context(
        query=query,
        allowed_operation_types=ALLOWED_OVER_POST,
        variable_values=variables,
        context_value=context,
        root_value=None,
        operation_name=operation_name,
        operation_extensions=operation_extensions,
    )
    for extension in extensions:
        extension.execution_context = execution
    result = await _execute(schema, execution, extensions, hooks, operation_extensions)
    view.answered_directly += 1
    return view.create_response(
        response_data=await view.process_result(request, result), sub_response=sub_response
    )


async def _execute(
    schema: Schema,
    execution: ExecutionContext,
    extensions: list[SchemaExtension],
    hooks: list[dict[str, bool] | None],
    operation_extensions: dict[str, Any] | None,
) -> ExecutionResult:
    """`Schema.execute` for a document the hooks find in the cache."""
    operation: Entered = []
    executing: Entered = []
    try:
        await _enter(operation, "on_operation", extensions, hooks)
        await _stage("on_parse", extensions, hooks, lambda: _parse_operation_document(execution))
        await _stage("on_validate", extensions, hooks, lambda: _run_validation(execution))
        if execution.pre_execution_errors:  # the cache changed under us: as Strawberry answers
            errors = execution.pre_execution_errors
            _finish(schema, execution, ExecutionResult(data=None, errors=errors))
            await _leave(operation)
            return _result(execution)
        await _enter(executing, "on_execute", extensions, hooks)
        if not execution.result:
            assert execution.graphql_document is not None
            outcome = schema._get_execute_function()(
                schema._schema,
                execution.graphql_document,
                root_value=execution.root_value,
                variable_values=execution.variables,
                operation_name=execution.operation_name,
                context_value=execution.context,
                is_awaitable=optimized_is_awaitable,
                **execution_context_class_kwargs(schema.execution_context_class),
                operation_extensions=operation_extensions,
            )
            execution.result = await await_maybe(outcome)
        result = execution.result
        if isinstance(result, GraphQLExecutionResult) and result.errors:
            execution.pre_execution_errors = result.errors
            schema._process_errors(result.errors, execution)
        await _leave(executing)
        await _leave(operation)
    except Exception as error:  # Strawberry's answer to a failing hook
        await _abandon(executing, error)
        await _abandon(operation, error)
        _finish(schema, execution, ExecutionResult(data=None, errors=[_coerce_error(error)]))
        return _result(execution)
    assert execution.result is not None
    _finish(schema, execution, execution.result, process=False)
    return _result(execution)


async def _stage(
    stage: str, extensions: list[SchemaExtension], hooks: list[dict[str, bool] | None], step: Any
) -> None:
    entered: Entered = []
    try:
        await _enter(entered, stage, extensions, hooks)
        step()
    except Exception as error:
        await _abandon(entered, error)
        raise
    await _leave(entered)


async def _enter(
    entered: Entered, stage: str, extensions: list[SchemaExtension], hooks: list[Any]
) -> None:
    for extension, found in zip(extensions, hooks, strict=True):
        if stage not in found:
            continue
        hook = getattr(extension, stage)()
        if found[stage]:
            await anext(hook)
        else:
            next(hook)
        entered.append(hook)


async def _leave(entered: Entered) -> None:
    while entered:
        hook = entered.pop()
        try:
            if isinstance(hook, AsyncGenerator):
                await anext(hook)
            else:
                next(hook)
        except (StopIteration, StopAsyncIteration):
            continue
        raise RuntimeError(f"{hook} did not stop after its yield")


async def _abandon(entered: Entered, error: BaseException) -> None:
    """Throws `error` into hooks still open, innermost first, as an exit stack does."""
    while entered:
        hook = entered.pop()
        try:
            if isinstance(hook, AsyncGenerator):
                await hook.athrow(error)
            else:
                hook.throw(error)
        except (StopIteration, StopAsyncIteration):
            pass
        except BaseException as raised:
            if raised is not error:
                error = raised


def _finish(
    schema: Schema, execution: ExecutionContext, result: Any, *, process: bool = True
) -> None:
    """`Schema._handle_execution_result` without extension results (none of the driven
    extensions has any: `extension_hooks` refuses those that do)."""
    errors: list[GraphQLError] | None = result.errors
    if errors:
        execution.pre_execution_errors = errors
        if process:
            schema._process_errors(errors, execution)
    if isinstance(result, GraphQLExecutionResult):
        result = ExecutionResult(data=result.data, errors=result.errors)
    result.extensions = dict(execution.extensions_results)
    execution.result = result


def _result(execution: ExecutionContext) -> ExecutionResult:
    assert isinstance(execution.result, ExecutionResult)
    return execution.result
