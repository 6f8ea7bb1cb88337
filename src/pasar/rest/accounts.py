"""Sign-up, log-in, sessions, password change and API keys."""

from __future__ import annotations

from pasar_core.accounts import api_key_store
from pasar_core.accounts import service as accounts
from pasar_core.audit.record import Actor
from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.models import (
    ApiKeyListOut,
    ApiKeyOut,
    CreatedApiKeyOut,
    PasswordChangedOut,
    TokenOut,
    UserOut,
)
from pasar.rest.requests import caller, query_int, read_model, services_of, source_of
from pasar.rest.responses import json_response


async def sign_up(request: Request) -> Response:
    credentials = await read_model(request, accounts.Credentials)
    signed_up = await accounts.sign_up(services_of(request), credentials)
    user = signed_up.user
    out = UserOut(
        id=user.id, email=user.email, role="admin", organisation_id=signed_up.organisation_id,
        created_at=user.created_at,
    )  # fmt: skip
    return json_response(out, 201)


async def issue_token(request: Request) -> Response:
    credentials = await read_model(request, accounts.Credentials)
    pair = await accounts.log_in(services_of(request), credentials, source_of(request))
    return json_response(TokenOut.of(pair))


async def refresh(request: Request) -> Response:
    body = await read_model(request, accounts.RefreshRequest)
    pair = await accounts.refresh_session(services_of(request), body.refresh_token)
    return json_response(TokenOut.of(pair))


async def log_out(request: Request) -> Response:
    body = await read_model(request, accounts.RefreshRequest)
    await accounts.log_out(services_of(request), body.refresh_token)
    return Response(status_code=204)


async def change_password(request: Request) -> Response:
    principal = await caller(request)
    change = await read_model(request, accounts.PasswordChange)
    changed = await accounts.change_password(
        services_of(request), principal, change, source_of(request)
    )
    return json_response(PasswordChangedOut.of_changed(changed))


async def create_api_key(request: Request) -> Response:
    principal = await caller(request)
    body = await read_model(request, api_key_store.ApiKeyRequest)
    created = await api_key_store.create_api_key(
        services_of(request), principal.user_id, body,
        organisation_id=principal.organisation_id, caller_role=principal.role,
        caller_operator=principal.operator, actor=Actor.of(principal),
    )  # fmt: skip
    return json_response(CreatedApiKeyOut.of_created(created), 201)


async def list_api_keys(request: Request) -> Response:
    principal = await caller(request)
    limit = query_int(request, "limit", 100, low=1, high=api_key_store.MAX_PAGE)
    offset = query_int(request, "offset", 0, low=0, high=1_000_000)
    views = await api_key_store.list_api_keys(
        services_of(request), principal.user_id, limit=limit, offset=offset
    )
    return json_response(ApiKeyListOut(api_keys=[ApiKeyOut.of(view) for view in views]))


async def revoke_api_key(request: Request) -> Response:
    principal = await caller(request)
    await api_key_store.revoke_api_key(
        services_of(request),
        request.path_params["key_id"],
        owner_id=principal.user_id,
        actor=Actor.of(principal),
    )
    return Response(status_code=204)
