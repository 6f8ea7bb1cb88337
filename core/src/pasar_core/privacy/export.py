"""`exportMyData`: one JSON document with everything pasar holds about the caller.

Rows are written column by column (so a new column appears without touching this module),
minus what is never handed out: password and key hashes, sealed tokens and secret values,
embedding vectors. Secrets appear by name only, connections and API keys as metadata.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.accounts.principal import Principal
from pasar_core.audit.queries import AuditRow
from pasar_core.audit.record import AUDIT
from pasar_core.objects import build_object_store
from pasar_core.services import Services
from pasar_core.storage.models import (
    Agent,
    AgentConnection,
    AgentSecret,
    AgentTool,
    ApiKey,
    AuditEntry,
    AuthToken,
    Base,
    CustomTool,
    CustomToolVersion,
    Embedding,
    Execution,
    ExecutionEvent,
    Invitation,
    Membership,
    Organisation,
    Schedule,
    User,
)

FORMAT = "pasar-export/1"
NEVER_EXPORTED = frozenset({
    "password_hash", "key_hash", "token_hash", "access_token_enc", "refresh_token_enc",
    "value_enc", "code_verifier_enc", "key_id", "embedding",
})  # fmt: skip
FILE_PAGE = 1000


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def _rows(
    session: AsyncSession,
    model: type[Base],
    where: ColumnElement[bool],
    *,
    only: Collection[str] | None = None,
    order: Any = None,
) -> list[dict[str, Any]]:
    table = model.__table__
    columns = [c for c in table.columns
               if c.name not in NEVER_EXPORTED and (only is None or c.name in only)]  # fmt: skip
    statement = select(*columns).where(where)
    if order is not None:
        statement = statement.order_by(order)
    result = await session.execute(statement)
    return [{k: _plain(v) for k, v in row._mapping.items()} for row in result]


async def export_user_data(services: Services, principal: Principal) -> dict[str, Any]:
    user_id = principal.user_id
    async with services.sessionmaker() as session:
        account = await _rows(session, User, User.id == user_id)
        memberships = await _rows(session, Membership, Membership.user_id == user_id)
        organisation_ids = [uuid.UUID(m["organisation_id"]) for m in memberships]
        organisations = await _rows(session, Organisation, Organisation.id.in_(organisation_ids),
                                    only=("id", "name", "personal", "created_at"))  # fmt: skip
        agents = await _rows(session, Agent, Agent.owner_id == user_id, order=Agent.created_at)
        agent_ids = [uuid.UUID(a["id"]) for a in agents]
        tools = await _rows(session, AgentTool, AgentTool.agent_id.in_(agent_ids),
                            order=AgentTool.position)  # fmt: skip
        secrets = await _rows(session, AgentSecret, AgentSecret.agent_id.in_(agent_ids),
                              only=("agent_id", "name", "created_at", "updated_at"))  # fmt: skip
        for agent in agents:
            agent["tools"] = [t["tool_id"] for t in tools if t["agent_id"] == agent["id"]]
            agent["secret_names"] = [s["name"] for s in secrets if s["agent_id"] == agent["id"]]
        executions = await _rows(session, Execution, Execution.user_id == user_id,
                                 order=Execution.created_at)  # fmt: skip
        events = await _rows(
            session, ExecutionEvent,
            ExecutionEvent.execution_id.in_([uuid.UUID(e["id"]) for e in executions]),
            only=("execution_id", "seq", "type", "data", "created_at"),
            order=ExecutionEvent.id,
        )  # fmt: skip
        for execution in executions:
            execution["events"] = [e for e in events if e["execution_id"] == execution["id"]]
        custom_tools = await _rows(session, CustomTool, CustomTool.owner_id == user_id)
        versions = await _rows(
            session, CustomToolVersion,
            CustomToolVersion.custom_tool_id.in_([uuid.UUID(t["id"]) for t in custom_tools]),
        )  # fmt: skip
        for tool in custom_tools:
            tool["versions"] = [v for v in versions if v["custom_tool_id"] == tool["id"]]
        document = {
            "format": FORMAT,
            "exported_at": datetime.now(UTC).isoformat(),
            "account": account[0] if account else None,
            "memberships": [
                {
                    **m,
                    "organisation": next(
                        (o for o in organisations if o["id"] == m["organisation_id"]), None
                    ),
                }
                for m in memberships
            ],
            "agents": agents,
            "executions": executions,
            "custom_tools": custom_tools,
            "api_keys": await _rows(session, ApiKey, ApiKey.user_id == user_id),
            "connections": await _rows(session, AuthToken, AuthToken.user_id == user_id),
            "attached_connections": await _rows(
                session, AgentConnection, AgentConnection.user_id == user_id
            ),
            "knowledge": await _rows(session, Embedding, Embedding.user_id == user_id),
            "schedules": await _rows(session, Schedule, Schedule.owner_id == user_id),
            "audit_log": _without_others_addresses(user_id, await _audit_rows(session, user_id)),
            "invitations": await _rows(
                session, Invitation, Invitation.email == principal.email.lower()
            ),
        }
    document["files"] = await _files(services, user_id)
    return document


async def _audit_rows(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The rows the user did or that are about them, in the audit API's shape."""
    statement = (
        select(AUDIT)
        .where(or_(AuditEntry.actor_id == user_id,
                   (AuditEntry.target_type == "user") & (AuditEntry.target_id == str(user_id))))
        .order_by(AuditEntry.id)
    )  # fmt: skip
    return [AuditRow.model_validate(row).as_json() for row in await session.execute(statement)]


def _without_others_addresses(
    user_id: uuid.UUID, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A row about the user that someone else wrote keeps who (an id), not where from: the
    address is that person's personal data, not the user's."""
    return [row if row.get("actor_id") == str(user_id) else {**row, "source": None}
            for row in rows]  # fmt: skip


async def _files(services: Services, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The names and sizes of the user's stored files (download each with GET /files/...)."""
    store = services.object_store or build_object_store(services.settings)
    found = await store.list(str(user_id), "", limit=FILE_PAGE)
    return [{"path": f.key, "size_bytes": f.size, "modified": f.modified.isoformat()}
            for f in found]  # fmt: skip
