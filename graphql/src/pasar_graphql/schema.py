"""The schema: every area's queries and mutations, query limits, and error formatting."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from pasar_graphql.accounts.mutations import AccountMutations
from pasar_graphql.accounts.queries import AccountQueries
from pasar_graphql.agents.history import HistoryMutations, HistoryQueries
from pasar_graphql.agents.knowledge import KnowledgeMutations, KnowledgeQueries
from pasar_graphql.agents.mutations import AgentMutations
from pasar_graphql.agents.queries import AgentQueries
from pasar_graphql.agents.schedules import ScheduleMutations, ScheduleQueries
from pasar_graphql.audit.queries import AuditQueries
from pasar_graphql.connections.mutations import ConnectionMutations
from pasar_graphql.connections.queries import ConnectionQueries
from pasar_graphql.cost import CostCache, CostLimit
from pasar_graphql.documents import CachedDocuments, DocumentCache, Limits
from pasar_graphql.errors import PasarErrors, log_errors
from pasar_graphql.executions.resolvers import ExecutionMutations, ExecutionQueries, Subscription
from pasar_graphql.observed import ObservedOperations
from pasar_graphql.organisations.resolvers import OrganisationMutations, OrganisationQueries
from pasar_graphql.plain_fields import use_plain_resolvers
from pasar_graphql.privacy.resolvers import PrivacyMutations, PrivacyQueries
from pasar_graphql.production import SignedInIntrospection, SuggestionFreeExecutionContext
from pasar_graphql.rate_limits import RateLimits
from pasar_graphql.tools.mutations import ToolMutations
from pasar_graphql.tools.queries import ToolQueries

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2000
MAX_BATCH = 10
"""Operations in one batched HTTP request (a JSON list); each is limited and counted alone."""
LIMITS = Limits(max_depth=MAX_DEPTH, max_aliases=MAX_ALIASES, max_tokens=MAX_TOKENS)


@strawberry.type
class Query(
    ToolQueries,
    AgentQueries,
    HistoryQueries,
    KnowledgeQueries,
    ScheduleQueries,
    AccountQueries,
    ExecutionQueries,
    ConnectionQueries,
    OrganisationQueries,
    AuditQueries,
    PrivacyQueries,
):
    pass


@strawberry.type
class Mutation(
    AccountMutations,
    AgentMutations,
    HistoryMutations,
    KnowledgeMutations,
    ScheduleMutations,
    ToolMutations,
    ExecutionMutations,
    ConnectionMutations,
    OrganisationMutations,
    PrivacyMutations,
):
    pass


def default_extensions(
    documents: DocumentCache | None = None, *, dev_mode: bool = False
) -> Sequence[Callable[[], SchemaExtension]]:
    """Factories, so every request gets fresh extension instances, around one document cache
    (the schema's: parse with the token limit, validate with the depth and alias limits, each
    once per document text). Production mode (the default) validates without suggestions and
    adds `SignedInIntrospection`."""
    cache = documents if documents is not None else DocumentCache(LIMITS, dev_mode=dev_mode)
    costs = CostCache()
    extensions: tuple[Callable[[], SchemaExtension], ...] = (
        ObservedOperations,
        lambda: CachedDocuments(cache),
        PasarErrors,
        lambda: CostLimit(costs),
        RateLimits,
    )
    if cache.dev_mode:
        return extensions
    return (*extensions, SignedInIntrospection)


class PasarSchema(strawberry.Schema):
    """Logs only unexpected errors (client mistakes and typed errors are not worth a trace).
    `documents`: the cache of checked documents its extensions share (see `build_schema`)."""

    documents: DocumentCache | None = None

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors)


def build_schema(*, dev_mode: bool = False) -> PasarSchema:
    """The schema in production mode (no suggestions, introspection for signed-in callers)
    unless `dev_mode`."""
    documents = DocumentCache(LIMITS, dev_mode=dev_mode)
    built = PasarSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=default_extensions(documents),
        execution_context_class=None if dev_mode else SuggestionFreeExecutionContext,
        config=StrawberryConfig(batching_config={"max_operations": MAX_BATCH}),
    )
    built.documents = documents
    use_plain_resolvers(built)
    return built
