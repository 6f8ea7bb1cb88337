"""Disconnect a provider."""

from __future__ import annotations

import strawberry
from pasar_core.audit.record import Actor
from pasar_core.oauth.connections import disconnect

from pasar_graphql.connections.types import Disconnected
from pasar_graphql.context import Info
from pasar_graphql.permissions import allowed


async def resolve_disconnect(info: Info, provider: str) -> Disconnected:
    context = info.context
    principal = await context.principal()
    name = provider[:100]
    revoked = await disconnect(context.services, principal.user_id, name, actor=Actor.of(principal))
    return Disconnected(provider=name, revoked=revoked)


@strawberry.type
class ConnectionMutations:
    disconnect = strawberry.mutation(
        resolver=resolve_disconnect,
        permission_classes=allowed("connections.disconnect"),
        description="Revoke your grant at a provider and delete its tokens; NOT_FOUND when not "
        "connected.",
    )
