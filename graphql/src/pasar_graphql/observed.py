"""Each GraphQL operation counted, timed and traced under a bounded name.

The name is the caller's choice, so it labels metrics only once the document validated and
holds an operation of that name (`invalid` otherwise, `anonymous` for an unnamed one). A new
name takes one of the process's `MAX_OPERATIONS` slots only from a caller who authenticated in
that operation, at most `MAX_NEW_OPERATIONS_PER_CALLER` per caller (`unauthenticated` and
`other` otherwise): pasar_core.observability.metrics.AdmittedNames."""

from __future__ import annotations

import time
from collections.abc import Iterator

from graphql.language import DocumentNode, OperationDefinitionNode
from pasar_core.observability.metrics import INVALID
from strawberry.extensions import SchemaExtension

from pasar_graphql.context import Context


def _operation(document: DocumentNode | None, name: str | None) -> OperationDefinitionNode | None:
    """The operation `name` selects (the only one when unnamed), as graphql-core picks it."""
    if document is None:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((op for op in operations if op.name and op.name.value == name), None)


class ObservedOperations(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if not isinstance(context, Context):
            yield
            return
        services = context.services
        started = time.perf_counter()
        with services.tracing.span("graphql.operation") as span:
            yield
            execution = self.execution_context
            operation = _operation(execution.graphql_document, execution.operation_name)
            valid = operation is not None and not execution.pre_execution_errors
            caller = context.authenticated
            label = services.metrics.operation_label(
                operation.name.value if operation and operation.name else None,
                valid=valid,
                caller=None if caller is None else str(caller.user_id),
            )
            kind = operation.operation.value if operation is not None and valid else INVALID
            result = execution.result
            failed = not valid or bool(result is not None and result.errors)
            metrics = services.metrics
            metrics.graphql_operations.labels(
                operation=label, type=kind, outcome="error" if failed else "success"
            ).inc()
            metrics.graphql_latency.labels(operation=label, type=kind).observe(
                time.perf_counter() - started
            )
            if span is not None:
                span.update_name(f"graphql {kind} {label}")
                span.set_attribute("graphql.operation.name", label)
                span.set_attribute("graphql.operation.type", kind)
