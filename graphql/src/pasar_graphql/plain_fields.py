"""Plain resolvers for plain fields.

Strawberry resolves a field without a resolver of its own (a "basic" field: `Tool.title`) through
three calls per value: its wrapper, `StrawberryField.get_result` and the default resolver. On a
list of objects that is most of the execution's own work (33 tools of three fields each: 99 per
request). Such a field needs no arguments, permissions, extensions or `Info`, so one function
reading the attribute gives the same value; Strawberry's wrapper stays for every other field.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLObjectType, GraphQLResolveInfo
from strawberry import Schema


def plain_resolver(python_name: str) -> Any:
    def resolve(source: Any, info: GraphQLResolveInfo[Any]) -> Any:
        return getattr(source, python_name)

    resolve.plain_field = python_name  # type: ignore[attr-defined]  # tests look for it
    return resolve


def use_plain_resolvers(schema: Schema) -> int:
    """Replaces Strawberry's resolver of every basic field; returns how many it replaced.
    Nothing is replaced under a custom `default_resolver` (it may do more than `getattr`)."""
    if schema.config.default_resolver is not getattr:
        return 0
    name_of = schema.config.name_converter.get_graphql_name
    replaced = 0
    for concrete in schema.schema_converter.type_map.values():
        graphql_type = concrete.implementation
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for field in getattr(concrete.definition, "fields", ()):
            graphql_field = graphql_type.fields.get(name_of(field))
            basic = field.is_basic_field and not field.extensions and not field.permission_classes
            if (
                graphql_field is not None
                and basic
                and getattr(graphql_field.resolve, "_is_default", False)
            ):
                graphql_field.resolve = plain_resolver(field.python_name)
                replaced += 1
    return replaced
