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
from pasar_graphql.production import (
    HideSuggestions,
    SignedInIntrospection,
    SuggestionFreeExecutionContext,
)
from pasar_graphql.tools.mutations import ToolMutations
from pasar_graphql.tools.queries import ToolQueries

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2000


@strawberry.type
class Query(ToolQueries, AgentQueries, AccountQueries, ExecutionQueries, ConnectionQueries):
    pass


@strawberry.type
class Mutation(
    AccountMutations, AgentMutations, ToolMutations, ExecutionMutations, ConnectionMutations
):
    pass


def default_extensions(*, dev_mode: bool = False) -> Sequence[Callable[[], SchemaExtension]]:
    """Factories, so every request gets fresh extension instances. Production mode (the
    default) adds `HideSuggestions` and `SignedInIntrospection`."""
    limits: tuple[Callable[[], SchemaExtension], ...] = (
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        PasarErrors,
    )
    if dev_mode:
        return limits
    return (*limits, HideSuggestions, SignedInIntrospection)


class PasarSchema(strawberry.Schema):
    """Logs only unexpected errors (client mistakes and typed errors are not worth a trace)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors)


def build_schema(*, dev_mode: bool = False) -> PasarSchema:
    """The schema in production mode (no suggestions, introspection for signed-in callers)
    unless `dev_mode`."""
    return PasarSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=default_extensions(dev_mode=dev_mode),
        execution_context_class=None if dev_mode else SuggestionFreeExecutionContext,
    )


schema = build_schema()
