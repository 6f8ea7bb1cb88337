"""The schema: every area's queries and mutations, query limits, and error formatting."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.types import ExecutionContext

from pasar_graphql.accounts.mutations import AccountMutations
from pasar_graphql.accounts.queries import AccountQueries
from pasar_graphql.agents.mutations import AgentMutations
from pasar_graphql.agents.queries import AgentQueries
from pasar_graphql.connections.mutations import ConnectionMutations
from pasar_graphql.connections.queries import ConnectionQueries
from pasar_graphql.errors import PasarErrors, log_errors
from pasar_graphql.executions.resolvers import ExecutionMutations, ExecutionQueries, Subscription
from pasar_graphql.tools.queries import ToolQueries

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2000


@strawberry.type
class Query(ToolQueries, AgentQueries, AccountQueries, ExecutionQueries, ConnectionQueries):
    pass


@strawberry.type
class Mutation(AccountMutations, AgentMutations, ExecutionMutations, ConnectionMutations):
    pass


def default_extensions() -> Sequence[Callable[[], SchemaExtension]]:
    """Factories, so every request gets fresh extension instances."""
    return (
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        PasarErrors,
    )


class PasarSchema(strawberry.Schema):
    """Logs only unexpected errors (client mistakes and typed errors are not worth a trace)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors)


def build_schema() -> PasarSchema:
    return PasarSchema(
        query=Query, mutation=Mutation, subscription=Subscription, extensions=default_extensions()
    )


schema = build_schema()
