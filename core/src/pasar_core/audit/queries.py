"""Reading the audit log: a filtered page of rows (newest first, keyset-paginated by id) and
the scope-usage report (which provider scopes which agents' tool calls used, how often, first
and last use: the evidence an OAuth app verification asks for)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from pasar_core.audit.record import AUDIT, Action
from pasar_core.services import Services

MAX_PAGE = 500


class AuditFilter(BaseModel):
    """What to list: every field narrows the rows; none lists everything."""

    model_config = ConfigDict(extra="forbid")

    organisation_id: uuid.UUID | None = None
    """One organisation's rows (an admin's reads are always narrowed to theirs)."""
    actor_id: uuid.UUID | None = None
    action: str | None = Field(default=None, max_length=64)
    """An action (`agent.created`) or a prefix ending in a dot (`agent.`)."""
    target_type: str | None = Field(default=None, max_length=32)
    target_id: str | None = Field(default=None, max_length=200)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    before_id: int | None = Field(default=None, ge=1)
    """Keyset pagination: rows older than this id (the previous page's `next_before`)."""
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


class AuditRow(BaseModel):
    """One audit row (append-only), read from the store: the same shape in REST, the CLI's
    JSON lines and the data export; GraphQL's `AuditEntry` carries it in camel case."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: int
    at: datetime
    actor_id: uuid.UUID | None
    actor_via: str | None
    organisation_id: uuid.UUID | None
    api_key_id: uuid.UUID | None
    action: str
    outcome: str
    target_type: str | None
    target_id: str | None
    source: str | None
    provider: str | None
    scopes: list[str] | None
    details: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The row as REST answers it (ids and times as strings)."""
        return self.model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class AuditPage:
    rows: list[AuditRow]
    next_before: int | None
    """Pass as `before_id` for the next page; None when this page is the last."""


async def search(services: Services, where: AuditFilter) -> AuditPage:
    c = AUDIT.c
    statement = select(AUDIT).order_by(c.id.desc()).limit(where.limit + 1)
    if where.organisation_id is not None:
        statement = statement.where(c.organisation_id == where.organisation_id)
    if where.actor_id is not None:
        statement = statement.where(c.actor_id == where.actor_id)
    if where.action:
        if where.action.endswith("."):
            statement = statement.where(c.action.startswith(where.action, autoescape=True))
        else:
            statement = statement.where(c.action == where.action)
    if where.target_type:
        statement = statement.where(c.target_type == where.target_type)
    if where.target_id:
        statement = statement.where(c.target_id == where.target_id)
    if where.since is not None:
        statement = statement.where(c.at >= where.since)
    if where.until is not None:
        statement = statement.where(c.at < where.until)
    if where.before_id is not None:
        statement = statement.where(c.id < where.before_id)
    async with services.sessionmaker() as session:
        found = [AuditRow.model_validate(row) for row in await session.execute(statement)]
    more = len(found) > where.limit
    rows = found[: where.limit]
    return AuditPage(rows, rows[-1].id if more and rows else None)


@dataclass(frozen=True, slots=True)
class ScopeUsage:
    provider: str
    scope: str
    calls: int
    agents: list[str]
    tools: list[str]
    first_used: datetime
    last_used: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider, "scope": self.scope, "calls": self.calls,
            "agents": self.agents, "tools": self.tools,
            "first_used": self.first_used.isoformat(), "last_used": self.last_used.isoformat(),
        }  # fmt: skip


CSV_COLUMNS: Sequence[str] = (
    "provider", "scope", "calls", "agents", "tools", "first_used", "last_used",
)  # fmt: skip


async def scope_usage(
    services: Services,
    *,
    provider: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    organisation_id: uuid.UUID | None = None,
) -> list[ScopeUsage]:
    """Per (provider, scope): tool calls that used it, by which agents and tools, first and
    last use; one statement over the `execution.tool_call` rows."""
    c = AUDIT.c
    scoped = (
        select(
            c.provider, func.unnest(c.scopes).label("scope"), c.at,
            c.details["agent_id"].astext.label("agent_id"), c.details["tool"].astext.label("tool"),
        )
        .where(c.action == Action.TOOL_CALL, c.scopes.is_not(None))
    )  # fmt: skip
    if provider is not None:
        scoped = scoped.where(c.provider == provider)
    if organisation_id is not None:
        scoped = scoped.where(c.organisation_id == organisation_id)
    if since is not None:
        scoped = scoped.where(c.at >= since)
    if until is not None:
        scoped = scoped.where(c.at < until)
    used = scoped.subquery()
    statement = (
        select(
            used.c.provider, used.c.scope, func.count().label("calls"),
            func.array_agg(func.distinct(used.c.agent_id)).label("agents"),
            func.array_agg(func.distinct(used.c.tool)).label("tools"),
            func.min(used.c.at).label("first_used"), func.max(used.c.at).label("last_used"),
        )
        .group_by(used.c.provider, used.c.scope)
        .order_by(used.c.provider, used.c.scope)
    )  # fmt: skip
    async with services.sessionmaker() as session:
        rows = await session.execute(statement)
        return [
            ScopeUsage(
                provider=row.provider,
                scope=row.scope,
                calls=row.calls,
                agents=sorted(a for a in row.agents if a),
                tools=sorted(t for t in row.tools if t),
                first_used=row.first_used,
                last_used=row.last_used,
            )
            for row in rows
        ]


def usage_csv(usage: list[ScopeUsage]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for item in usage:
        writer.writerow([item.provider, item.scope, item.calls, " ".join(item.agents),
                         " ".join(item.tools), item.first_used.isoformat(),
                         item.last_used.isoformat()])  # fmt: skip
    return out.getvalue()
