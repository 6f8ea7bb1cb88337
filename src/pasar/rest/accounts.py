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
    return json_response(TokenOut.of(await accounts.log_in(services_of(request), credentials)))


async def refresh(request: Request) -> Response:
    body = await read_model(request, accounts.RefreshRequest)
    pair = await accounts.refresh_session(services_of(request), body.refresh_token)
    return json_response(TokenOut.of(pair))


async def log_out(request: Request) -> Response:
    body = await read_model(request, accounts.RefreshRequest)
    await accounts.log_out(services_of(request), body.refresh_token)
    return Response(status_code=204)


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
