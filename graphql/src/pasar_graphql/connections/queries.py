"""Scope plans and connections."""

from __future__ import annotations

import strawberry
from pasar_core.accounts.credentials import credential_from_headers
from pasar_core.agents.service import parse_agent_id
from pasar_core.oauth.connections import list_connections
from pasar_core.oauth.plan import scope_plan

from pasar_graphql.connections.types import Connection, ProviderScopePlan
from pasar_graphql.context import Info
from pasar_graphql.permissions import allowed

MAX_TOOLS = 200


async def resolve_compile_scopes(
    info: Info, tools: list[str], agent_id: strawberry.ID | None = None
) -> list[ProviderScopePlan]:
    context = info.context
    signed_in = agent_id is not None or credential_from_headers(context.request.headers)
    principal = await context.principal() if signed_in else None
    plans = await scope_plan(
        context.services,
        list(dict.fromkeys(tools[:MAX_TOOLS])),
        principal=principal,
        agent_id=parse_agent_id(agent_id) if agent_id is not None else None,
    )
    return [ProviderScopePlan.of(plan) for plan in plans]


async def resolve_connections(info: Info) -> list[Connection]:
    context = info.context
    principal = await context.principal()
    return [Connection.of(v) for v in await list_connections(context.services, principal.user_id)]


@strawberry.type
class ConnectionQueries:
    compile_scopes = strawberry.field(
        resolver=resolve_compile_scopes,
        permission_classes=allowed("connections.compile_scopes"),
        description="The least OAuth scopes the given actions need, per provider, each with its "
        "risk class and the actions needing it; with `agentId`, the diff against that agent's "
        "tools. UNKNOWN_TOOLS for ids no plugin provides.",
    )
    connections = strawberry.field(
        resolver=resolve_connections,
        permission_classes=allowed("connections.list"),
        description="Your OAuth provider grants: scopes and health.",
    )
