"""The audit log (`auditLog`) and the provider scope usage (`scopeUsage`): an organisation's
admins read its rows, the server's operator every row (pasar_core.audit.access)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from pasar_core.audit.access import audit_scope
from pasar_core.audit.queries import AuditFilter, AuditRow, ScopeUsage, scope_usage, search
from pasar_core.schemas import parse_model
from strawberry.scalars import JSON

from pasar_graphql.context import Info
from pasar_graphql.permissions import allowed


@strawberry.type(description="One audit row (append-only).")
class AuditEntry:
    id: strawberry.ID
    at: datetime
    actor_id: strawberry.ID | None
    actor_via: str | None
    organisation_id: strawberry.ID | None
    api_key_id: strawberry.ID | None
    action: str
    outcome: str
    target_type: str | None
    target_id: str | None
    source: str | None = strawberry.field(description="The client's address.")
    provider: str | None
    scopes: list[str] | None
    details: JSON

    @classmethod
    def of(cls, row: AuditRow) -> AuditEntry:
        return cls(
            id=strawberry.ID(str(row.id)), at=row.at,
            actor_id=strawberry.ID(str(row.actor_id)) if row.actor_id else None,
            actor_via=row.actor_via,
            organisation_id=strawberry.ID(str(row.organisation_id)) if row.organisation_id else None,
            api_key_id=strawberry.ID(str(row.api_key_id)) if row.api_key_id else None,
            action=row.action, outcome=row.outcome, target_type=row.target_type,
            target_id=row.target_id, source=row.source, provider=row.provider,
            scopes=row.scopes, details=JSON(row.details),
        )  # fmt: skip


@strawberry.type(description="A page of audit rows, newest first.")
class AuditPage:
    entries: list[AuditEntry]
    next_before: strawberry.ID | None = strawberry.field(
        description="Pass as `beforeId` for the next page; null on the last page."
    )


@strawberry.type(description="How one provider scope was used by agents' tool calls.")
class ScopeUse:
    provider: str
    scope: str
    calls: int
    agents: list[strawberry.ID]
    tools: list[str]
    first_used: datetime
    last_used: datetime

    @classmethod
    def of(cls, usage: ScopeUsage) -> ScopeUse:
        return cls(
            provider=usage.provider, scope=usage.scope, calls=usage.calls,
            agents=[strawberry.ID(a) for a in usage.agents], tools=usage.tools,
            first_used=usage.first_used, last_used=usage.last_used,
        )  # fmt: skip


async def resolve_audit_log(
    info: Info,
    organisation_id: strawberry.ID | None = None,
    actor_id: strawberry.ID | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: strawberry.ID | None = None,
    first: int = 100,
) -> AuditPage:
    principal = await info.context.principal()
    given = {"organisation_id": organisation_id, "actor_id": actor_id, "action": action, "target_type": target_type,
             "target_id": target_id, "since": since, "until": until, "before_id": before_id,
             "limit": first}  # fmt: skip
    where = parse_model(AuditFilter, {k: v for k, v in given.items() if v is not None},
                        what="filter")  # fmt: skip
    where = where.model_copy(
        update={"organisation_id": audit_scope(principal, where.organisation_id)}
    )
    page = await search(info.context.services, where)
    return AuditPage(
        entries=[AuditEntry.of(row) for row in page.rows],
        next_before=strawberry.ID(str(page.next_before)) if page.next_before else None,
    )


async def resolve_scope_usage(
    info: Info,
    provider: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    organisation_id: strawberry.ID | None = None,
) -> list[ScopeUse]:
    principal = await info.context.principal()
    asked = parse_model(AuditFilter, {"organisation_id": organisation_id} if organisation_id
                        else {}, what="filter").organisation_id  # fmt: skip
    usage = await scope_usage(
        info.context.services, provider=provider[:64] if provider else None,
        since=since, until=until, organisation_id=audit_scope(principal, asked),
    )  # fmt: skip
    return [ScopeUse.of(item) for item in usage]


@strawberry.type
class AuditQueries:
    audit_log = strawberry.field(
        resolver=resolve_audit_log,
        permission_classes=allowed("audit.list"),
        description="The audit log, newest first, filtered (action may be a prefix ending in "
        "'.'): an admin reads their organisation's rows, the server's operator every row.",
    )
    scope_usage = strawberry.field(
        resolver=resolve_scope_usage,
        permission_classes=allowed("audit.scope_usage"),
        description="Which provider scopes agents' tool calls used, with counts and first and "
        "last use (an admin: their organisation's calls; the operator: every call).",
    )
