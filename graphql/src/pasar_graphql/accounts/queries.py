"""Who am I."""

from __future__ import annotations

import strawberry

from pasar_graphql.accounts.types import Viewer
from pasar_graphql.context import Info


async def resolve_me(info: Info) -> Viewer:
    return Viewer.of(await info.context.principal())


@strawberry.type
class AccountQueries:
    me = strawberry.field(
        resolver=resolve_me, description="The authenticated caller (UNAUTHENTICATED without one)."
    )
