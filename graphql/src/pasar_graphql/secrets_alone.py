"""A mutation whose answer holds a secret shown once runs alone in its operation.

Mutation fields are non-null, so when one root field of an operation fails, GraphQL nulls the
whole `data`: a `createApiKey` that succeeded beside a field that then failed would create the
key and lose its secret (nothing can show it again), and a `refreshToken` or `changePassword`
would spend the caller's session and lose the new one. So an operation that selects one of
`SECRET_MUTATIONS` may select no other root field (`__typename` aside, aliases and fragments
counted): it is refused at validation, before anything runs, with `SECRET_MUTATION_NOT_ALONE`.
The rule runs once per cached document (`pasar_graphql.documents.DocumentCache`).
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)
from graphql.validation import ValidationRule
from pasar_core.errors import PasarError

SECRET_MUTATIONS = frozenset({"createApiKey", "refreshToken", "changePassword", "inviteMember"})
"""Mutations whose answer (an API key, the next session's tokens, an invitation's secret)
cannot be asked for again."""


class SecretMutationNotAlone(PasarError):
    code = "SECRET_MUTATION_NOT_ALONE"
    status = 400

    def __init__(self, field: str, others: list[str]) -> None:
        super().__init__(
            f"{field} answers a secret shown only once: send it as the only field of its "
            f"operation (one failing field would null the whole answer); also selected: "
            f"{', '.join(others)}",
            details={"field": field, "others": others},
        )


def root_fields(
    selections: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]
) -> list[FieldNode]:
    """The root fields an operation selects, through its fragments (each copy counted)."""
    found: list[FieldNode] = []

    def walk(selection_set: SelectionSetNode, seen: frozenset[str]) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                found.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:
                    walk(fragments[name].selection_set, seen | {name})

    walk(selections, frozenset())
    return found


class SecretMutationsAlone(ValidationRule):
    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        if node.operation is not OperationType.MUTATION:
            return
        fragments = {
            definition.name.value: definition
            for definition in self.context.document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        fields = [
            f for f in root_fields(node.selection_set, fragments) if f.name.value != "__typename"
        ]
        secret = next((f for f in fields if f.name.value in SECRET_MUTATIONS), None)
        if secret is None or len(fields) == 1:
            return
        others = [(f.alias or f.name).value for f in fields if f is not secret]
        refused = SecretMutationNotAlone((secret.alias or secret.name).value, others)
        self.report_error(GraphQLError(refused.message, fields, original_error=refused))
