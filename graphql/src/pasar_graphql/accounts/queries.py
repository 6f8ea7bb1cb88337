"""Who am I, and my API keys."""

from __future__ import annotations

import strawberry
from pasar_core.accounts import api_key_store
from pasar_core.errors import ValidationFailed

from pasar_graphql.accounts.types import ApiKeyInfo, Viewer
from pasar_graphql.context import Info
from pasar_graphql.permissions import allowed


async def resolve_me(info: Info) -> Viewer:
    return Viewer.of(await info.context.principal())


async def resolve_api_keys(info: Info, first: int = 100, offset: int = 0) -> list[ApiKeyInfo]:
    if not 1 <= first <= api_key_store.MAX_PAGE or offset < 0:
        raise ValidationFailed(f"first must be between 1 and {api_key_store.MAX_PAGE}, offset >= 0")
    context = info.context
    principal = await context.principal()
    views = await api_key_store.list_api_keys(
        context.services, principal.user_id, limit=first, offset=offset
    )
    return [ApiKeyInfo.of(view) for view in views]


@strawberry.type
class AccountQueries:
    me = strawberry.field(
        resolver=resolve_me,
        permission_classes=allowed("accounts.me"),
        description="The authenticated caller (UNAUTHENTICATED without one).",
    )
    api_keys = strawberry.field(
        resolver=resolve_api_keys,
        permission_classes=allowed("api_keys.list"),
        description="Your API keys, newest first (revoked and expired ones included); never "
        "the keys themselves.",
    )
