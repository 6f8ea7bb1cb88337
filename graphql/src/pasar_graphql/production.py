"""Production mode: no field suggestions in any error, introspection for signed-in callers only.

Suggestions ("Did you mean 'tools'?") map the schema for a stranger one typo at a time, so they
are hidden everywhere graphql-core makes them: validation (`validate_without_suggestions`, run
once per document by `pasar_graphql.documents.CachedDocuments`) and variable coercion at
execution (`SuggestionFreeExecutionContext`). The same holds for every caller, so a validation
result stays cacheable by document text.

Introspection depends on who asks, so `SignedInIntrospection` decides it per request, after
validation and before execution, from the request's context.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from graphql import GraphQLError, GraphQLSchema, validate
from graphql.language import DocumentNode
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from pasar_core.errors import PasarError, Unauthenticated
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule
from strawberry.types import ExecutionResult

# Introspection enters only through these two root fields, and GraphQL names cannot be
# escaped, so a document without this text cannot introspect (a cheap first filter).
INTROSPECTION_FIELD = re.compile(r"__(?:schema|type)(?![_0-9A-Za-z])")
SIGN_IN_TO_INTROSPECT = (
    "introspection needs a signed-in caller: send 'Authorization: Bearer <token or API key>'"
)


def validate_without_suggestions(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...]
) -> list[GraphQLError]:
    """Strawberry's validation (its rules added, as `strawberry.schema.schema.validate_document`
    does) with graphql-core's `hide_suggestions`."""
    rules = (*rules, MaybeNullValidationRule, OneOfInputValidationRule)
    return validate(schema, document, rules, hide_suggestions=True)


class SuggestionFreeExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Variable coercion errors without suggestions (`Did you mean 'name'?`)."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        kwargs["hide_suggestions"] = True
        return super().build(*args, **kwargs)


def introspects(schema: GraphQLSchema, document: DocumentNode, query: str | None) -> bool:
    """Whether a (valid) document asks for `__schema` or `__type`."""
    if query is not None and not INTROSPECTION_FIELD.search(query):
        return False
    return bool(validate(schema, document, [NoSchemaIntrospectionCustomRule]))


async def introspection_refusal(context: object) -> GraphQLError | None:
    """None for a signed-in caller, else the error to answer with."""
    principal = getattr(context, "principal", None)
    error: PasarError
    if principal is None:
        error = Unauthenticated(SIGN_IN_TO_INTROSPECT)
    else:
        try:
            await principal()
            return None
        except Unauthenticated as refused:
            error = Unauthenticated(f"introspection needs a signed-in caller: {refused.message}")
        except PasarError as failed:
            error = failed
    return GraphQLError(error.message, original_error=error)


class SignedInIntrospection(SchemaExtension):
    """Answers an introspection query from an anonymous caller with `UNAUTHENTICATED`."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if (
            context.result is None
            and document is not None
            and introspects(context.schema._schema, document, context.query)
        ):
            refusal = await introspection_refusal(context.context)
            if refusal is not None:  # setting a result makes Strawberry skip execution
                context.result = ExecutionResult(data=None, errors=[refusal])
        yield
