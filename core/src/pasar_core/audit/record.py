"""Writing audit rows: inside the transaction of the action they record, never one of their own
on a path that already has one (a failed log-in has none, so it writes its own).

Rows are append-only (the migration's trigger refuses UPDATE and DELETE). They hold ids, never
secrets (no tokens, passwords, keys or tool arguments) and no personal data beyond the user's
id and the client's address: no emails or names, so an erased user leaves only their id.
A row done in an organisation names it (`organisation_id`): its admins read those rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from pasar_core.accounts.principal import Principal
from pasar_core.storage.models import AuditEntry

AUDIT = cast("Table", AuditEntry.__table__)
SOURCE_LIMIT = 100
TARGET_LIMIT = 200


class Action:
    """The actions the log records (the `action` column)."""

    LOGIN = "auth.login"
    LOGIN_FAILED = "auth.login_failed"
    PASSWORD_CHANGED = "auth.password_changed"  # noqa: S105 (an action name)
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    ROLE_CHANGED = "member.role_changed"
    MEMBER_INVITED = "member.invited"
    INVITATION_ACCEPTED = "member.invitation_accepted"
    INVITATION_DECLINED = "member.invitation_declined"
    INVITATION_REVOKED = "member.invitation_revoked"
    INVITATION_LAPSED = "member.invitation_lapsed"
    MEMBER_REMOVED = "member.removed"
    OPERATOR_CHANGED = "user.operator_changed"
    USER_DELETED = "user.deleted"
    AGENT_CREATED = "agent.created"
    AGENT_UPDATED = "agent.updated"
    AGENT_DELETED = "agent.deleted"
    AGENT_SHARED = "agent.shared"
    THREAD_DELETED = "agent.thread_deleted"
    SCHEDULE_CREATED = "schedule.created"
    SCHEDULE_PAUSED = "schedule.paused"
    SCHEDULE_RESUMED = "schedule.resumed"
    SCHEDULE_DELETED = "schedule.deleted"
    OAUTH_CONNECTED = "oauth.connected"
    OAUTH_DISCONNECTED = "oauth.disconnected"
    OAUTH_REFRESH_FAILED = "oauth.refresh_failed"
    APPROVAL_APPROVED = "approval.approved"
    APPROVAL_REJECTED = "approval.rejected"
    TOOL_REGISTERED = "tool.registered"
    TOOL_UPDATED = "tool.updated"
    TOOL_DELETED = "tool.deleted"
    TOOL_SHARED = "tool.shared"
    TOOL_UNSHARED = "tool.unshared"
    PLUGIN_INSTALLED = "plugin.installed"
    PLUGIN_REMOVED = "plugin.removed"
    EXECUTION_STARTED = "execution.started"
    TOOL_CALL = "execution.tool_call"
    RETENTION_CHANGED = "retention.changed"
    RETENTION_APPLIED = "retention.applied"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted, from where (`via`: token, api_key, cli, or system for the server itself) and
    in which organisation (None: an action of no organisation, like a log-in failure)."""

    user_id: uuid.UUID | None
    via: str
    api_key_id: uuid.UUID | None = None
    source: str | None = None
    organisation_id: uuid.UUID | None = None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.user_id, principal.via, principal.api_key_id, principal.source,
                   principal.organisation_id)  # fmt: skip

    def within(self, organisation_id: uuid.UUID | None) -> Actor:
        """The same actor acting in `organisation_id` (the CLI acting on an organisation)."""
        return replace(self, organisation_id=organisation_id)


CLI = Actor(None, "cli")
SYSTEM = Actor(None, "system")


def audit_row(
    action: str,
    actor: Actor,
    *,
    target: tuple[str, object] | None = None,
    outcome: str = "ok",
    details: Mapping[str, Any] | None = None,
    provider: str | None = None,
    scopes: Collection[str] | None = None,
) -> dict[str, Any]:
    """The column values of one row (for `record`, or a batch written with other rows)."""
    return {
        "actor_id": actor.user_id,
        "actor_via": actor.via,
        "organisation_id": actor.organisation_id,
        "api_key_id": actor.api_key_id,
        "source": actor.source[:SOURCE_LIMIT] if actor.source else None,
        "action": action,
        "outcome": outcome,
        "target_type": target[0] if target else None,
        "target_id": str(target[1])[:TARGET_LIMIT] if target else None,
        "provider": provider,
        "scopes": sorted(scopes) if scopes is not None else None,
        "details": dict(details or {}),
    }


async def record(
    session: AsyncSession | AsyncConnection,
    action: str,
    actor: Actor,
    **row: Any,
) -> None:
    """Append one row within the caller's transaction (it commits or rolls back with it)."""
    await session.execute(insert(AUDIT), [audit_row(action, actor, **row)])


async def write_rows(session: AsyncSession | AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(AUDIT), rows)
