"""A cost budget per operation, beside the depth, alias and token limits: every field costs 1,
and a list field multiplies what it selects by how many items it may return (its `first` or
`limit` argument, the argument's default, or `DEFAULT_LIST_SIZE` for a list without one).
An operation over `max_cost` does not run: `QUERY_TOO_COSTLY` with its cost and the budget.

The cost of a document that uses no variables for its sizes is computed once per parsed
document (the document cache hands out the same object for the same text)."""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_interface_type,
    is_object_type,
)
from graphql.utilities import get_operation_ast
from pasar_core.errors import PasarError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

MAX_COST = 50_000
DEFAULT_LIST_SIZE = 20
SIZE_ARGUMENTS = ("first", "limit")


class QueryTooCostly(PasarError):
    code = "QUERY_TOO_COSTLY"
    status = 400

    def __init__(self, cost: int, max_cost: int) -> None:
        super().__init__(
            f"the operation costs {cost}, over the budget of {max_cost} (each field costs 1; "
            "a list multiplies its fields by `first`): ask for fewer items or fields",
            details={"cost": cost, "max_cost": max_cost},
        )


def _is_list(field: GraphQLField) -> bool:
    kind: Any = field.type
    if isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    return isinstance(kind, GraphQLList)


class _Walk:
    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any]
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.used_variables = False
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def size(self, node: FieldNode, field: GraphQLField) -> int:
        for argument in node.arguments or ():
            if argument.name.value in SIZE_ARGUMENTS:
                value = argument.value
                if isinstance(value, IntValueNode):
                    return max(0, int(value.value))
                if isinstance(value, VariableNode):
                    self.used_variables = True
                    given = self.variables.get(value.name.value)
                    if isinstance(given, int) and not isinstance(given, bool):
                        return max(0, given)
        for name in SIZE_ARGUMENTS:
            default = field.args[name].default_value if name in field.args else None
            if isinstance(default, int):
                return default
        return DEFAULT_LIST_SIZE

    def cost(self, selections: SelectionSetNode, parent: Any, seen: frozenset[str]) -> int:
        total = 0
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                total += self.field_cost(selection, parent, seen)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                kind = self.schema.get_type(condition.name.value) if condition else parent
                total += self.cost(selection.selection_set, kind or parent, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in seen:
                    kind = self.schema.get_type(fragment.type_condition.name.value)
                    total += self.cost(fragment.selection_set, kind or parent, seen | {name})
        return total

    def field_cost(self, node: FieldNode, parent: Any, seen: frozenset[str]) -> int:
        fields = parent.fields if is_object_type(parent) or is_interface_type(parent) else {}
        field = fields.get(node.name.value)
        if field is None or node.selection_set is None:
            return 1
        inner = self.cost(node.selection_set, get_named_type(field.type), seen)
        return 1 + (self.size(node, field) * inner if _is_list(field) else inner)


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any],
) -> tuple[int, bool]:
    """The operation's cost, and whether it depends on the variables."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0, False
    root: GraphQLObjectType | None = schema.get_root_type(operation.operation)
    walk = _Walk(schema, document, variables)
    return walk.cost(operation.selection_set, root, frozenset()), walk.used_variables


class CostCache:
    """Costs of parsed documents by object identity (the document cache returns the same object
    for the same text; graphql-core hashes a node by walking it, so it is not the key), for
    costs that do not depend on variables; bounded, least recently used first out."""

    def __init__(self, maxsize: int = 512) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[int, tuple[weakref.ref[DocumentNode], dict[str | None, int]]]
        self._entries = OrderedDict()

    def get(self, document: DocumentNode, operation_name: str | None) -> int | None:
        entry = self._entries.get(id(document))
        if entry is None or entry[0]() is not document:
            return None
        self._entries.move_to_end(id(document))
        return entry[1].get(operation_name)

    def put(self, document: DocumentNode, operation_name: str | None, cost: int) -> None:
        entry = self._entries.get(id(document))
        if entry is None or entry[0]() is not document:
            entry = (weakref.ref(document), {})
            self._entries[id(document)] = entry
            if len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        entry[1][operation_name] = cost


class CostLimit(SchemaExtension):
    """Refuses an operation whose cost is over `max_cost` before it runs."""

    def __init__(self, costs: CostCache, max_cost: int = MAX_COST) -> None:
        self.costs = costs
        self.max_cost = max_cost

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if context.result is None and document is not None and not context.pre_execution_errors:
            cost = self.costs.get(document, context.operation_name)
            if cost is None:
                cost, varies = operation_cost(context.schema._schema, document,
                                              context.operation_name, context.variables or {})  # fmt: skip
                if not varies:
                    self.costs.put(document, context.operation_name, cost)
            if cost > self.max_cost:
                refused = QueryTooCostly(cost, self.max_cost)
                context.result = ExecutionResult(
                    data=None, errors=[GraphQLError(refused.message, original_error=refused)]
                )
        yield
