"""GET /auth/{provider}/callback (the browser lands here after consent), and the caller's
provider connections: GET /connections, DELETE /connections/{provider}."""

from __future__ import annotations

from datetime import datetime

from pasar_core.executions.authorization import resume_awaiting
from pasar_core.oauth import connections
from pasar_core.oauth.consent import complete_consent, outcome_page
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from pasar.rest.requests import caller, services_of
from pasar.rest.responses import json_response

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the URL carried an authorization code
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}
CALLBACK_PARAMS = ("code", "state", "error", "scope")


class ConnectionOut(BaseModel):
    provider: str
    title: str
    scopes: list[str]
    health: str
    has_refresh_token: bool
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


async def callback(request: Request) -> Response:
    """Exchange the code (only after the state checked out) and answer a small HTML page."""
    params = {k: request.query_params[k] for k in CALLBACK_PARAMS if k in request.query_params}
    services = services_of(request)
    outcome = await complete_consent(services, request.path_params["provider"][:100], params)
    if outcome.ok and outcome.agent_id is not None:
        await resume_awaiting(services, outcome.agent_id)
    return HTMLResponse(outcome_page(outcome), status_code=outcome.status, headers=PAGE_HEADERS)


async def list_connections(request: Request) -> Response:
    principal = await caller(request)
    views = await connections.list_connections(services_of(request), principal.user_id)
    return json_response(
        ConnectionListOut(
            connections=[
                ConnectionOut(
                    provider=v.provider, title=v.title, scopes=list(v.scopes), health=v.health,
                    has_refresh_token=v.has_refresh_token, expires_at=v.expires_at,
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
    revoked = await connections.disconnect(services_of(request), principal.user_id, provider)
    return json_response(DisconnectedOut(provider=provider, revoked=revoked))
