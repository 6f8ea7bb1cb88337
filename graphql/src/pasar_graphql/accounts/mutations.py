"""Sign-up, log-in, sessions, password change and API keys; input is validated by `pasar_core`."""

from __future__ import annotations

from datetime import datetime

import strawberry
from pasar_core.accounts import api_key_store
from pasar_core.accounts.service import (
    Credentials,
    PasswordChange,
    RefreshRequest,
    change_password,
    log_in,
    log_out,
    refresh_session,
    sign_up,
)
from pasar_core.audit.record import Actor
from pasar_core.schemas import parse_model

from pasar_graphql.accounts.types import AccessToken, ApiKey, ApiKeyInfo, PasswordChanged, User
from pasar_graphql.context import Info
from pasar_graphql.permissions import allowed


def _credentials(email: str, password: str) -> Credentials:
    return parse_model(Credentials, {"email": email, "password": password}, what="credentials")


async def resolve_sign_up(info: Info, email: str, password: str) -> User:
    return User.of(await sign_up(info.context.services, _credentials(email, password)))


async def resolve_log_in(info: Info, email: str, password: str) -> AccessToken:
    context = info.context
    pair = await log_in(context.services, _credentials(email, password), context.source())
    return AccessToken.of(pair)


async def resolve_refresh_token(info: Info, refresh_token: str) -> AccessToken:
    body = parse_model(RefreshRequest, {"refresh_token": refresh_token}, what="refresh token")
    return AccessToken.of(await refresh_session(info.context.services, body.refresh_token))


async def resolve_log_out(info: Info, refresh_token: str) -> bool:
    body = parse_model(RefreshRequest, {"refresh_token": refresh_token}, what="refresh token")
    await log_out(info.context.services, body.refresh_token)
    return True


async def resolve_change_password(
    info: Info, current_password: str, new_password: str, revoke_api_keys: bool = False
) -> PasswordChanged:
    context = info.context
    principal = await context.principal()
    change = parse_model(
        PasswordChange,
        {
            "current_password": current_password,
            "new_password": new_password,
            "revoke_api_keys": revoke_api_keys,
        },
        what="password change",
    )
    changed = await change_password(context.services, principal, change, context.source())
    return PasswordChanged.of(changed)


async def resolve_create_api_key(
    info: Info,
    name: str = "default",
    expires_in_s: int | None = None,
    expires_at: datetime | None = None,
    role: str | None = None,
    operator: bool = False,
) -> ApiKey:
    context = info.context
    principal = await context.principal()
    request = parse_model(
        api_key_store.ApiKeyRequest,
        {
            "name": name,
            "expires_in_s": expires_in_s,
            "expires_at": expires_at,
            "role": role,
            "operator": operator,
        },
        what="API key",
    )
    created = await api_key_store.create_api_key(
        context.services, principal.user_id, request,
        organisation_id=principal.organisation_id, caller_role=principal.role,
        caller_operator=principal.operator, actor=Actor.of(principal),
    )  # fmt: skip
    return ApiKey.of(created)


async def resolve_revoke_api_key(info: Info, id: strawberry.ID) -> ApiKeyInfo:
    context = info.context
    principal = await context.principal()
    view = await api_key_store.revoke_api_key(
        context.services, str(id), owner_id=principal.user_id, actor=Actor.of(principal)
    )
    return ApiKeyInfo.of(view)


@strawberry.type
class AccountMutations:
    sign_up = strawberry.mutation(
        resolver=resolve_sign_up,
        permission_classes=allowed("accounts.sign_up"),
        description="Register with email and password (8 characters or more).",
    )
    refresh_token = strawberry.mutation(
        resolver=resolve_refresh_token,
        permission_classes=allowed("accounts.refresh"),
        description="Spend a refresh token for a new access token and the next refresh token.",
    )
    log_in = strawberry.mutation(
        resolver=resolve_log_in,
        permission_classes=allowed("accounts.log_in"),
        description="Exchange email and password for an access token.",
    )
    log_out = strawberry.mutation(
        resolver=resolve_log_out,
        permission_classes=allowed("accounts.log_out"),
        description="End the session of a refresh token: its refresh tokens and the access "
        "tokens issued with them stop working.",
    )
    change_password = strawberry.mutation(
        resolver=resolve_change_password,
        permission_classes=allowed("accounts.change_password"),
        description="Change your password. Every session and access token of yours is revoked "
        "and a new session returned; API keys are kept unless `revokeApiKeys` is true.",
    )
    create_api_key = strawberry.mutation(
        resolver=resolve_create_api_key,
        permission_classes=allowed("api_keys.create"),
        description="Create an API key for the caller, optionally expiring (`expiresInS` or "
        "`expiresAt`); the key is shown only in this response.",
    )
    revoke_api_key = strawberry.mutation(
        resolver=resolve_revoke_api_key,
        permission_classes=allowed("api_keys.revoke"),
        description="Revoke one of your API keys; it is refused from now on.",
    )
