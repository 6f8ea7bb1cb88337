"""GET /audit (a filtered page of the audit log: an admin's organisation's rows, every row for
the operator) and GET /audit/scope-usage."""

from __future__ import annotations

import uuid
from datetime import datetime

from pasar_core.audit.access import audit_scope
from pasar_core.audit.queries import AuditFilter, AuditRow, scope_usage, search, usage_csv
from pasar_core.errors import BadRequest
from pasar_core.schemas import parse_model
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.requests import caller, services_of
from pasar.rest.responses import json_response

FILTERS = ("organisation_id", "actor_id", "action", "target_type", "target_id", "since", "until", "before_id",
           "limit")  # fmt: skip


class AuditPageOut(BaseModel):
    rows: list[AuditRow]
    next_before: int | None


class ScopeUsageOut(BaseModel):
    provider: str
    scope: str
    calls: int
    agents: list[str]
    tools: list[str]
    first_used: datetime
    last_used: datetime


class ScopeUsageListOut(BaseModel):
    scopes: list[ScopeUsageOut]


async def list_audit(request: Request) -> Response:
    principal = await caller(request)
    params = request.query_params
    unknown = sorted(set(params) - set(FILTERS))
    if unknown:
        raise BadRequest(f"unknown query parameters: {', '.join(unknown)[:200]}")
    where = parse_model(AuditFilter, dict(params), what="query")
    where = where.model_copy(
        update={"organisation_id": audit_scope(principal, where.organisation_id)}
    )
    page = await search(services_of(request), where)
    return json_response(AuditPageOut(rows=page.rows, next_before=page.next_before))


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be an ISO 8601 time") from None
    if value.tzinfo is None:
        raise BadRequest(f"query parameter {name!r} needs a time zone (Z or +01:00)")
    return value


def _organisation(request: Request) -> uuid.UUID | None:
    raw = request.query_params.get("organisation_id")
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise BadRequest("query parameter 'organisation_id' must be a UUID") from None


async def export_scope_usage(request: Request) -> Response:
    principal = await caller(request)
    output = request.query_params.get("format", "json")
    if output not in ("json", "csv"):
        raise BadRequest("query parameter 'format' must be json or csv")
    provider = request.query_params.get("provider")
    usage = await scope_usage(
        services_of(request),
        provider=provider[:64] if provider else None,
        since=_time(request, "since"),
        until=_time(request, "until"),
        organisation_id=audit_scope(principal, _organisation(request)),
    )
    if output == "csv":
        return Response(
            usage_csv(usage),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="scope-usage.csv"'},
        )
    return json_response(
        ScopeUsageListOut(scopes=[ScopeUsageOut.model_validate(u.as_json()) for u in usage])
    )
