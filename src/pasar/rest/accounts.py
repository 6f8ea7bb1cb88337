"""POST /auth/signup, POST /auth/token, POST /api-keys."""

from __future__ import annotations

from pasar_core.accounts import service as accounts
from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.models import ApiKeyOut, TokenOut, UserOut
from pasar.rest.requests import caller, read_model, services_of
from pasar.rest.responses import json_response


async def sign_up(request: Request) -> Response:
    credentials = await read_model(request, accounts.Credentials)
    user = await accounts.sign_up(services_of(request), credentials)
    return json_response(
        UserOut(id=user.id, email=user.email, role=user.role, created_at=user.created_at), 201
    )


async def issue_token(request: Request) -> Response:
    credentials = await read_model(request, accounts.Credentials)
    token = await accounts.log_in(services_of(request), credentials)
    return json_response(
        TokenOut(access_token=token.token, token_type=token.token_type, expires_in=token.expires_in)
    )


async def create_api_key(request: Request) -> Response:
    principal = await caller(request)
    body = await read_model(request, accounts.ApiKeyRequest)
    created = await accounts.create_api_key(services_of(request), principal, body.name)
    return json_response(
        ApiKeyOut(
            id=created.id,
            name=created.name,
            prefix=created.prefix,
            key=created.key,
            created_at=created.created_at,
        ),
        201,
    )
