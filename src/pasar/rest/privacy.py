"""GET /me/export and DELETE /me (a user's own data: export, erasure) and GET/PUT /retention
(the organisation's retention policy, admins set it): pasar_core.privacy."""

from __future__ import annotations

import json

from pasar_core.audit.record import Actor
from pasar_core.privacy.erasure import ErasureRequest, delete_my_account
from pasar_core.privacy.export import export_user_data
from pasar_core.privacy.retention import RetentionInput, retention_of, set_retention
from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.requests import caller, read_model, runs_of, services_of
from pasar.rest.responses import json_response


async def export_my_data(request: Request) -> Response:
    principal = await caller(request)
    document = await export_user_data(services_of(request), principal)
    return Response(
        json.dumps(document, separators=(",", ":")),
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="pasar-export.json"',
            "Cache-Control": "private, no-store",
        },
    )


async def delete_my_account_route(request: Request) -> Response:
    principal = await caller(request)
    data = await read_model(request, ErasureRequest)
    await delete_my_account(services_of(request), runs_of(request), principal, data)
    return Response(status_code=204)


async def get_retention(request: Request) -> Response:
    principal = await caller(request)
    return json_response(await retention_of(services_of(request), principal.organisation_id))


async def put_retention(request: Request) -> Response:
    principal = await caller(request)
    data = await read_model(request, RetentionInput)
    saved = await set_retention(
        services_of(request), principal.organisation_id, data, Actor.of(principal)
    )
    return json_response(saved)
