"""pasar's GraphQL API: a Strawberry schema over the `pasar_core` services (no business logic)."""

from __future__ import annotations

from pasar_graphql.app import PasarGraphQL, build_graphql_app
from pasar_graphql.context import Context
from pasar_graphql.schema import build_schema

__all__ = ["Context", "PasarGraphQL", "build_graphql_app", "build_schema"]
