"""Sign-up, log-in and API keys; input is validated by `pasar_core`."""

from __future__ import annotations

import strawberry
from pasar_core.accounts.service import (
    ApiKeyRequest,
    Credentials,
    RefreshRequest,
    create_api_key,
    log_in,
    refresh_session,
    sign_up,
)
from pasar_core.schemas import parse_model

from pasar_graphql.accounts.types import AccessToken, ApiKey, User
from pasar_graphql.context import Info


def _credentials(email: str, password: str) -> Credentials:
    return parse_model(Credentials, {"email": email, "password": password}, what="credentials")


async def resolve_sign_up(info: Info, email: str, password: str) -> User:
    return User.of(await sign_up(info.context.services, _credentials(email, password)))


async def resolve_log_in(info: Info, email: str, password: str) -> AccessToken:
    return AccessToken.of(await log_in(info.context.services, _credentials(email, password)))


async def resolve_refresh_token(info: Info, refresh_token: str) -> AccessToken:
    body = parse_model(RefreshRequest, {"refresh_token": refresh_token}, what="refresh token")
    return AccessToken.of(await refresh_session(info.context.services, body.refresh_token))


async def resolve_create_api_key(info: Info, name: str = "default") -> ApiKey:
    context = info.context
    principal = await context.principal()
    request = parse_model(ApiKeyRequest, {"name": name}, what="API key")
    return ApiKey.of(await create_api_key(context.services, principal, request.name))


@strawberry.type
class AccountMutations:
    sign_up = strawberry.mutation(
        resolver=resolve_sign_up,
        description="Register with email and password (8 characters or more).",
    )
    refresh_token = strawberry.mutation(
        resolver=resolve_refresh_token,
        description="Spend a refresh token for a new access token and the next refresh token.",
    )
    log_in = strawberry.mutation(
        resolver=resolve_log_in, description="Exchange email and password for an access token."
    )
    create_api_key = strawberry.mutation(
        resolver=resolve_create_api_key,
        description="Create an API key for the caller; the key is shown only in this response.",
    )
