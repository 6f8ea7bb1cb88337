"""SQLAlchemy 2.x models for the requirement's tables plus api_keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    cast,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

INDEXED_DIMENSIONS = (384, 768, 1024, 1536)
"""Embedding sizes with their own partial HNSW index (cosine); vectors of any other size (up to
2,000) are stored and found by an exact scan."""

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSONB, list[Any]: JSONB}


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    operator: Mapped[bool] = mapped_column(nullable=False, default=False, server_default=false())
    """The server's operator: installs sandboxed plugins (roles in organisations are
    `Membership.role`)."""
    created_at: Mapped[datetime] = _now()


ROLE_CHECK = "role IN ('admin', 'member', 'viewer')"


class Organisation(Base):
    """A team. Every user has a personal one (created at sign-up) where they are admin."""

    __tablename__ = "organisations"
    __table_args__ = (
        CheckConstraint("retention_days > 0", name="retention_days"),
        CheckConstraint("knowledge_days > 0", name="knowledge_days"),
        CheckConstraint("file_days > 0", name="file_days"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    personal: Mapped[bool] = mapped_column(nullable=False, default=False, server_default=false())
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    retention_days: Mapped[int | None] = mapped_column(Integer)
    """Days its finished runs (with their events) are kept after they finished; None keeps
    them (pasar_core.privacy.retention)."""
    knowledge_days: Mapped[int | None] = mapped_column(Integer)
    """Days the knowledge (embeddings) of its agents is kept; None keeps it."""
    file_days: Mapped[int | None] = mapped_column(Integer)
    """Days stored files are kept (a personal organisation's policy: files are their user's)."""
    created_at: Mapped[datetime] = _now()


class Membership(Base):
    """A user's role in an organisation: `admin`, `member` or `viewer`."""

    __tablename__ = "memberships"

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = _now()

    __table_args__ = (CheckConstraint(ROLE_CHECK, name="role"),)


class Invitation(Base):
    """An admin's invitation of an email address into an organisation with a role: a pending
    offer, not a membership (pasar_core.organisations.invitations). Accepting it makes the
    membership; accepting, declining or revoking it deletes the row; it lapses at `expires_at`."""

    __tablename__ = "invitations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False
    )
    email: Mapped[str] = mapped_column(String(320), nullable=False, index=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    invited_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    """SHA-256 (hex) of the single-use secret accepting needs; the secret itself is not kept."""

    __table_args__ = (
        CheckConstraint(ROLE_CHECK, name="role"),
        UniqueConstraint("organisation_id", "email"),
    )


def _organisation() -> Mapped[uuid.UUID]:
    return mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False, index=True
    )


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    organisation_id: Mapped[uuid.UUID] = _organisation()
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    """At most its creator's role in the organisation (the lower of both applies)."""
    operator: Mapped[bool] = mapped_column(nullable=False, default=False, server_default=false())
    """Whether the key carries its creator's operator powers (asked for at creation, by an
    operator; they also need the creator to be the operator still)."""
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = _now()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint(ROLE_CHECK, name="role"),)


class RefreshToken(Base):
    """A rotating refresh token (stored hashed). Each use issues the next one of its family;
    using one twice revokes the whole family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False, index=True)
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    """The organisation the session acts in (None: the user's personal one)."""
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()


class RevokedSession(Base):
    """A session (refresh-token family) whose access tokens are refused, kept until every access
    token it could have issued has expired. Each process holds these in memory."""

    __tablename__ = "revoked_sessions"

    session_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    """No foreign key: the row must outlive a deleted user until its tokens have expired."""
    revoked_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )


class Tool(Base):
    """The catalogue: installed plugins' tools as last seen (synced at start-up), sandboxed
    plugins' tools, and custom tools (one row per id an agent may name: `acme:total` for the
    latest version and `acme:total@2` for each pinned one), so `agent_tools` can reference them.
    `source` is `installed`, `sandboxed` or `custom`; custom rows carry their `owner_id`."""

    __tablename__ = "tools"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    family: Mapped[str] = mapped_column(String(100), nullable=False)
    plugin: Mapped[str] = mapped_column(String(200), nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)
    input_schema: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    output_schema: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    auth_provider: Mapped[str | None] = mapped_column(String(100))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, default=list)
    effect: Mapped[str] = mapped_column(String(16), nullable=False)
    available: Mapped[bool] = mapped_column(nullable=False, default=True)
    updated_at: Mapped[datetime] = _now()
    source: Mapped[str] = mapped_column(
        String(16), nullable=False, default="installed", server_default="installed"
    )
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )

    __table_args__ = (
        CheckConstraint("source IN ('installed', 'sandboxed', 'custom')", name="source"),
    )


class ToolNamespace(Base):
    """A custom tool namespace (`acme` of `acme:total`), claimed by its first user."""

    __tablename__ = "tool_namespaces"

    namespace: Mapped[str] = mapped_column(String(24), primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = _now()


class CustomTool(Base):
    """A user's custom tool; its definitions live in `custom_tool_versions`."""

    __tablename__ = "custom_tools"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    tool_id: Mapped[str] = mapped_column(String(60), unique=True, nullable=False)
    namespace: Mapped[str] = mapped_column(
        ForeignKey("tool_namespaces.namespace", ondelete="CASCADE"), nullable=False
    )
    latest_version: Mapped[int] = mapped_column(Integer, nullable=False)
    shared_organisation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    """None: private to its owner (who has it in every organisation they act in); else the
    one organisation it is shared with (`pasar_core.custom_tools.sharing`)."""
    shared_role: Mapped[str | None] = mapped_column(String(16))
    """With `shared_organisation_id`: members act on it with at most this role, as on an
    agent's (`pasar_core.authz.policy`)."""
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        CheckConstraint("shared_role IN ('admin', 'member', 'viewer')", name="shared_role"),
    )


class CustomToolVersion(Base):
    """One immutable version of a custom tool: the whole registration body, and its digest."""

    __tablename__ = "custom_tool_versions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    custom_tool_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("custom_tools.id", ondelete="CASCADE"), nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    definition: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = _now()

    __table_args__ = (
        Index("uq_custom_tool_versions_tool_version", "custom_tool_id", "version", unique=True),
    )


class ToolRevision(Base):
    """A counter per scope (`user:<id>` for a user's custom tools, `sandboxed` for sandboxed
    plugins), raised by every change: processes rebuild cached registries when it moves."""

    __tablename__ = "tool_revisions"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)


class SandboxedPlugin(Base):
    """A plugin wheel installed into its own sandbox image; only its manifest is trusted data."""

    __tablename__ = "sandboxed_plugins"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    distribution: Mapped[str] = mapped_column(String(200), nullable=False)
    version: Mapped[str] = mapped_column(String(64), nullable=False)
    image: Mapped[str] = mapped_column(Text, nullable=False)
    manifest: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    allow_hosts: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, default=list)
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    installed_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    installed_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    organisation_id: Mapped[uuid.UUID] = _organisation()
    shared_role: Mapped[str | None] = mapped_column(String(16))
    """None: private to its owner; else shared with its organisation, members acting on it
    with at most this role."""
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    """The number of its newest `agent_versions` row: what a new run runs."""
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        CheckConstraint("shared_role IN ('admin', 'member', 'viewer')", name="shared_role"),
    )

    tool_links: Mapped[list[AgentTool]] = relationship(
        back_populates="agent",
        cascade="all, delete-orphan",
        order_by="AgentTool.position",
        lazy="selectin",
    )

    @property
    def tool_ids(self) -> list[str]:
        return [link.tool_id for link in self.tool_links]


class AgentTool(Base):
    __tablename__ = "agent_tools"

    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    tool_id: Mapped[str] = mapped_column(ForeignKey("tools.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False)

    agent: Mapped[Agent] = relationship(back_populates="tool_links")


class AgentVersion(Base):
    """One immutable snapshot of an agent as a create, update or rollback left it."""

    __tablename__ = "agent_versions"

    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    tools: Mapped[list[Any]] = mapped_column(nullable=False, default=list)
    config: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    rolled_back_from: Mapped[int | None] = mapped_column(Integer)
    """The version this one copies, when it was made by a rollback."""
    created_at: Mapped[datetime] = _now()


class AgentConnection(Base):
    """A user's OAuth grant attached to an agent explicitly: the grant a run of the agent by
    another member uses for that provider (nobody's grant is used otherwise)."""

    __tablename__ = "agent_connections"

    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = _now()


class AuthToken(Base):
    """An OAuth grant of one user for one provider; tokens are stored encrypted."""

    __tablename__ = "auth_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    provider: Mapped[str] = mapped_column(String(100), nullable=False)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, default=list)
    access_token_enc: Mapped[bytes | None] = mapped_column()
    refresh_token_enc: Mapped[bytes | None] = mapped_column()
    key_id: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="active")
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    """`status`: `active`, or `needs_reauth` after the provider refused the refresh token
    (`invalid_grant`) or the tokens failed to decrypt: such a grant is never refreshed again,
    only replaced by a new consent."""
    account_subject: Mapped[str | None] = mapped_column(String(255))
    account_email: Mapped[str | None] = mapped_column(String(320))
    """The provider account that consented (OpenID `sub` and `email`), when it said."""

    __table_args__ = (
        Index("uq_auth_tokens_user_provider", "user_id", "provider", unique=True),
        CheckConstraint("status IN ('active', 'needs_reauth')", name="status"),
    )


class NarrowedToken(Base):
    """An access token minted from a grant for a subset of its scopes (one agent's, for a
    provider that narrows on refresh: `pasar_core.oauth.narrowing`), encrypted like the
    grant's; one per grant and scope set, replaced when near expiry."""

    __tablename__ = "narrowed_tokens"

    grant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_tokens.id", ondelete="CASCADE"), primary_key=True
    )
    scopes_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    """sha256 of the sorted scopes, space separated."""
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    access_token_enc: Mapped[bytes] = mapped_column(nullable=False)
    key_id: Mapped[str] = mapped_column(String(64), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = _now()


class OAuthState(Base):
    """A pending consent: the `state` (stored hashed), PKCE verifier (sealed), who asked, for
    which agent and scopes. Single use: the callback deletes it; it expires after minutes."""

    __tablename__ = "oauth_states"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(100), nullable=False)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, default=list)
    key_id: Mapped[str] = mapped_column(String(64), nullable=False)
    code_verifier_enc: Mapped[bytes] = mapped_column(nullable=False)
    redirect_uri: Mapped[str] = mapped_column(Text, nullable=False)
    browser_hash: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the secret in the cookie of the browser that started the consent (after
    its user signed in); the callback accepts the state only with that cookie."""
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Execution(Base):
    __tablename__ = "executions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    organisation_id: Mapped[uuid.UUID] = _organisation()
    """The agent's organisation when the run was made (reads check it in their statement)."""
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="queued")
    input: Mapped[Any] = mapped_column(JSONB, nullable=False)
    parameters: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    output: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    steps: Mapped[list[Any]] = mapped_column(nullable=False, default=list)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    executor: Mapped[str] = mapped_column(
        String(16), nullable=False, default="inline", server_default="inline"
    )
    thread_id: Mapped[str | None] = mapped_column(String(200))
    agent_version: Mapped[int | None] = mapped_column(Integer)
    """The agent's version the run runs (None: made before versions were kept)."""
    webhook_url: Mapped[str | None] = mapped_column(Text)
    cached: Mapped[bool] = mapped_column(nullable=False, default=False, server_default=false())
    cancel_requested: Mapped[bool] = mapped_column(
        nullable=False, default=False, server_default=false()
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    input_hash: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    """The claim of the runner that may write this run's steps (None: nobody holds it)."""
    owner: Mapped[str | None] = mapped_column(String(200))
    """Who holds the lease (process or rq worker name), for operators."""
    last_seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    """The `seq` of the run's newest stored event: the next one is `last_seq + 1`."""
    interruptions: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )
    """How often the run's process died under it (the run was resumed elsewhere)."""
    approval_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """While awaiting_approval: when the pause ends the run (APPROVAL_EXPIRED)."""
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("schedules.id", ondelete="SET NULL")
    )
    """The schedule that fired the run (None: a caller started it, or the schedule is gone)."""
    scheduled_for: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """The schedule's tick the run was fired for: one run per (schedule, tick)."""
    created_at: Mapped[datetime] = _now()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_executions_agent_created", "agent_id", "created_at"),
        Index("ix_executions_status", "status"),
        Index("ix_executions_created", "created_at"),  # retention's month checks
        Index("ix_executions_agent_input_hash", "agent_id", "input_hash"),
        Index("ix_executions_organisation_created", "organisation_id", "created_at"),
        Index("ix_executions_organisation_finished", "organisation_id", "finished_at"),
        Index(
            "ix_executions_agent_user_thread",
            "agent_id",
            "user_id",
            "thread_id",
            postgresql_where="thread_id IS NOT NULL",
        ),
        Index(
            "ix_executions_active_heartbeat",
            "heartbeat_at",
            postgresql_where="status IN ('queued', 'running')",
        ),
        Index(
            "uq_executions_schedule_tick",
            "schedule_id",
            "scheduled_for",
            unique=True,
            postgresql_where="schedule_id IS NOT NULL",
        ),
        Index(
            "ix_executions_approval_expires",
            "approval_expires_at",
            postgresql_where="status = 'awaiting_approval'",
        ),
        CheckConstraint(
            "status IN ('queued', 'running', 'awaiting_approval', 'awaiting_authorization', "
            "'succeeded', 'failed', 'limit_exceeded', 'cancelled')",
            name="status",
        ),
    )


class Schedule(Base):
    """A cron schedule on an agent: its owner's runs of `input`, fired by
    pasar_core.schedules.firer (one run per tick: `next_run_at` is claimed under a row lock,
    and `uq_executions_schedule_tick` refuses a second run of a tick)."""

    __tablename__ = "schedules"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), nullable=False
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    organisation_id: Mapped[uuid.UUID] = _organisation()
    cron: Mapped[str] = mapped_column(String(200), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    input: Mapped[Any] = mapped_column(JSONB, nullable=False)
    thread_id: Mapped[str | None] = mapped_column(String(200))
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """The next tick to fire (UTC); None while paused."""
    last_fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """The tick of its latest run."""
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_reason: Mapped[str | None] = mapped_column(Text)
    """Why the server paused it (its owner lost access to the agent); None: paused by a caller."""
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    """The API key it was made with (None: a session): its runs act with that key's standing."""
    created_at: Mapped[datetime] = _now()

    __table_args__ = (
        Index("ix_schedules_agent_owner", "agent_id", "owner_id"),
        Index("ix_schedules_due", "next_run_at", postgresql_where="paused_at IS NULL"),
    )


class ExecutionEvent(Base):
    """Everything observable about a run, in order; `seq` is the SSE event id. Partitioned by
    month of its run's creation (pasar_core.storage.partitions)."""

    __tablename__ = "execution_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("executions.id", ondelete="CASCADE"), nullable=False
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    created_at: Mapped[datetime] = _now()
    execution_created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), primary_key=True
    )
    """The run's `created_at`: the partition key (a run's events share a partition)."""

    __table_args__ = (
        Index(
            "uq_execution_events_execution_seq",
            "execution_id",
            "seq",
            "execution_created_at",
            unique=True,
        ),
        {"postgresql_partition_by": "RANGE (execution_created_at)"},
    )


class AgentSecret(Base):
    """A per-agent secret (a database DSN, an API token), encrypted like OAuth tokens."""

    __tablename__ = "agent_secrets"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    key_id: Mapped[str] = mapped_column(String(64), nullable=False)
    value_enc: Mapped[bytes] = mapped_column(nullable=False)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (Index("uq_agent_secrets_agent_name", "agent_id", "name", unique=True),)


def _hnsw_index(dimensions: int) -> Index:
    return Index(
        f"ix_embeddings_hnsw_{dimensions}",
        cast(text("embedding"), Vector(dimensions)).label(f"embedding_{dimensions}"),
        postgresql_using="hnsw",
        postgresql_ops={f"embedding_{dimensions}": "vector_cosine_ops"},
        postgresql_where=text(f"dimensions = {dimensions}"),
    )


class Embedding(Base):
    """One embedded chunk of an agent's knowledge (`kind` knowledge: a document's chunk, the
    document named in `document_id` and `metadata`) or of its past exchanges (`kind` exchange).
    The vector has the size of the model that made it (`model`, `dimensions`)."""

    __tablename__ = "embeddings"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False, server_default="knowledge")
    document_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    model: Mapped[str] = mapped_column(
        String(250), nullable=False, server_default="local:all-minilm-l6-v2"
    )
    content: Mapped[str] = mapped_column(Text, nullable=False)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", nullable=False, default=dict)
    embedding: Mapped[Any] = mapped_column(Vector(), nullable=False)
    dimensions: Mapped[int] = mapped_column(
        Integer, Computed("vector_dims(embedding)", persisted=True)
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), primary_key=True
    )
    """Also the partition key (monthly, pasar_core.storage.partitions)."""

    __table_args__ = (
        CheckConstraint("kind IN ('knowledge', 'exchange')", name="kind"),
        Index("ix_embeddings_agent_document", "agent_id", "document_id"),
        *(_hnsw_index(dimensions) for dimensions in INDEXED_DIMENSIONS),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )


class AuditEntry(Base):
    """One privileged action or execution event: append-only (a trigger refuses UPDATE and
    DELETE). No foreign keys: the rows outlive the users and agents they name."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    at: Mapped[datetime] = _now()
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_via: Mapped[str | None] = mapped_column(String(16))
    """`token`, `api_key` or `cli` (an operator on the server's machine)."""
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    """The organisation the action was done in (None: none, like a failed log-in); no foreign
    key, like the actor's."""
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False, server_default="ok")
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(100))
    """The client's address (`pasar_core.accounts.sources`)."""
    provider: Mapped[str | None] = mapped_column(String(64))
    scopes: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    """The provider scopes a tool call used (`execution.tool_call` rows)."""
    details: Mapped[dict[str, Any]] = mapped_column(nullable=False, server_default="{}")

    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_actor_at", "actor_id", "at"),
        Index("ix_audit_log_action_at", "action", "at"),
        Index("ix_audit_log_target", "target_type", "target_id"),
        Index("ix_audit_log_organisation_id", "organisation_id", "id"),
        Index("ix_audit_log_scoped", "provider", postgresql_where=text("scopes IS NOT NULL")),
    )


class IdempotencyKey(Base):
    """A claimed `Idempotency-Key` of one user acting in one organisation on one route, with
    the first answer."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    route: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )
