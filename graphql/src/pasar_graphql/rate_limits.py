"""Rate limits per GraphQL operation: every occurrence (alias) of a limited root field counts
once against its class, so one document cannot do what 30 REST requests do for the price of
one. Each operation of a batch is checked on its own. Over a limit, the operation does not run:
`RATE_LIMITED` with `retryAfter`, and (outside a batch) HTTP 429 with `Retry-After`."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationType,
    SelectionSetNode,
)
from graphql.utilities import get_operation_ast
from pasar_core.accounts.principal import Principal
from pasar_core.errors import PasarError
from pasar_core.rate_limits import RateLimited, RouteClass
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

A, W, R = RouteClass.AUTH, RouteClass.WRITES, RouteClass.RUNS
LIMITED_FIELDS: dict[str, RouteClass] = {
    "signUp": A, "logIn": A, "refreshToken": A, "changePassword": A,
    "createAgent": W, "updateAgent": W, "deleteAgent": W, "registerTool": W, "updateTool": W,
    "deleteTool": W, "createApiKey": W, "revokeApiKey": W, "disconnect": W,
    "cancelExecution": W, "createOrganisation": W, "switchOrganisation": W, "inviteMember": W,
    "revokeInvitation": W, "acceptInvitation": W, "declineInvitation": W,
    "setMemberRole": W, "removeMember": W, "shareAgent": W, "attachConnection": W,
    "detachConnection": W, "setRetentionPolicy": W, "rollbackAgent": W, "deleteThread": W,
    "addKnowledge": W, "addKnowledgeFile": W, "deleteKnowledge": W, "shareTool": W, "unshareTool": W,
    "createSchedule": W, "pauseSchedule": W, "resumeSchedule": W, "deleteSchedule": W,
    "deleteMyAccount": A,  # it checks a password: the auth budget, as log-in
    "executeAgent": R, "decideApproval": R,
}  # fmt: skip
"""Mutation root fields by route class (as REST: auth, writes, runs); queries are reads."""
LIMITED_QUERY_FIELDS: dict[str, RouteClass] = {"searchKnowledge": W}
"""Query root fields that cost what a write does (an embedding per search, as REST's POST
/agents/{id}/knowledge/search); other queries are reads."""
UNLIMITED_MUTATIONS = frozenset({"logOut"})
"""Mutations that count against no budget (as REST's /auth/logout); every other mutation is
in LIMITED_FIELDS (a test checks the schema)."""


def limited_fields(document: DocumentNode, operation_name: str | None) -> Counter[RouteClass]:
    """How many limited root fields (each alias, each fragment's copy) the operation selects."""
    operation = get_operation_ast(document, operation_name)
    counts: Counter[RouteClass] = Counter()
    if operation is None or operation.operation is OperationType.SUBSCRIPTION:
        return counts
    limited = (
        LIMITED_FIELDS if operation.operation is OperationType.MUTATION else LIMITED_QUERY_FIELDS
    )
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }

    def walk(selections: SelectionSetNode, seen: frozenset[str]) -> None:
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                route_class = limited.get(selection.name.value)
                if route_class is not None:
                    counts[route_class] += 1
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:  # validation refuses cycles too
                    walk(fragments[name].selection_set, seen | {name})

    walk(operation.selection_set, frozenset())
    return counts


class RateLimits(SchemaExtension):
    """Checks the operation's limited fields against the caller's budgets before it runs."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        writer = None
        if context.result is None and document is not None and not context.pre_execution_errors:
            counts = limited_fields(document, context.operation_name)
            if counts:
                refusal, writer = await _refusal(context.context, counts)
                if refusal is not None:  # a result makes Strawberry skip execution
                    writer = None
                    context.result = ExecutionResult(
                        data=None, errors=[GraphQLError(refusal.message, original_error=refusal)]
                    )
                    _answer_429(context.context, refusal)
        _wrote(context.context, writer)
        yield
        _wrote(context.context, writer)


def _wrote(request_context: object, principal: Principal | None) -> None:
    """A caller's writes and runs send its reads to the primary for a while (read-your-writes
    with a replica, pasar_core.storage.reads): while the mutation runs and after it."""
    reads = getattr(getattr(request_context, "services", None), "reads", None)
    if principal is not None and reads is not None:
        reads.wrote(principal.user_id)


async def _refusal(
    request_context: object, counts: Counter[RouteClass]
) -> tuple[PasarError | None, Principal | None]:
    """The refusal (None: within budget) and the signed-in caller who writes (None: none)."""
    services = getattr(request_context, "services", None)
    located_principal = getattr(request_context, "located_principal", None)
    source = getattr(request_context, "source", None)
    if services is None or located_principal is None or source is None:
        return None, None
    try:
        principal = await located_principal()
    except PasarError:
        principal = None  # the resolvers refuse bad credentials themselves
    try:
        for route_class, cost in counts.items():
            who = None if route_class is RouteClass.AUTH else principal
            await services.rate_limiter.check(route_class, who, source(), cost)
    except RateLimited as limited:
        return limited, None
    writes = any(route_class is not RouteClass.AUTH for route_class in counts)
    return None, principal if writes else None


def _answer_429(request_context: object, refusal: PasarError) -> None:
    response = getattr(request_context, "response", None)
    if isinstance(response, Response) and not getattr(request_context, "batch", False):
        response.status_code = 429
        response.headers["Retry-After"] = str(refusal.details["retry_after_s"])
