"""The caller's provider connections: GET /connections, DELETE /connections/{provider}. (The
browser side of consent, start and callback, is `pasar.rest.consent`.)"""

from __future__ import annotations

from datetime import datetime

from pasar_core.audit.record import Actor
from pasar_core.oauth import connections
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.requests import caller, services_of
from pasar.rest.responses import json_response


class ConnectionOut(BaseModel):
    provider: str
    title: str
    scopes: list[str]
    health: str
    has_refresh_token: bool
    account: str | None
    expires_at: datetime | None
    refreshed_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class ConnectionListOut(BaseModel):
    connections: list[ConnectionOut]


class DisconnectedOut(BaseModel):
    provider: str
    revoked: bool


async def list_connections(request: Request) -> Response:
    principal = await caller(request)
    views = await connections.list_connections(services_of(request), principal.user_id)
    return json_response(
        ConnectionListOut(
            connections=[
                ConnectionOut(
                    provider=v.provider, title=v.title, scopes=list(v.scopes), health=v.health,
                    account=v.account, has_refresh_token=v.has_refresh_token,
                    expires_at=v.expires_at,
                    refreshed_at=v.refreshed_at, last_error=v.last_error,
                    created_at=v.created_at, updated_at=v.updated_at,
                )
                for v in views
            ]
        )
    )  # fmt: skip


async def disconnect(request: Request) -> Response:
    principal = await caller(request)
    provider = request.path_params["provider"][:100]
    revoked = await connections.disconnect(
        services_of(request), principal.user_id, provider, actor=Actor.of(principal)
    )
    return json_response(DisconnectedOut(provider=provider, revoked=revoked))
