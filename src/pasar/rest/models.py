"""Response shapes of the REST API (also the source of the OpenAPI document)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pasar_core.accounts.api_key_store import ApiKeyView, CreatedApiKey
from pasar_core.accounts.service import PasswordChanged, TokenPair
from pasar_core.agents.service import AgentSaved, AgentView
from pasar_core.agents.versions import VersionDiff, VersionView
from pasar_core.executions.service import ExecutionView
from pasar_core.executions.threads import ThreadView, TurnView
from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    role: str
    """Their role in their personal organisation (admin)."""
    organisation_id: uuid.UUID
    """Their personal organisation."""
    created_at: datetime


class TokenOut(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int

    @classmethod
    def of(cls, pair: TokenPair) -> TokenOut:
        return cls(
            access_token=pair.access.token,
            token_type=pair.access.token_type,
            expires_in=pair.access.expires_in,
            refresh_token=pair.refresh.token,
            refresh_expires_in=pair.refresh.expires_in,
        )


class PasswordChangedOut(TokenOut):
    """A new session for the caller; every earlier session was revoked."""

    sessions_revoked: int
    api_keys_revoked: int
    api_keys_active: int

    @classmethod
    def of_changed(cls, changed: PasswordChanged) -> PasswordChangedOut:
        return cls(
            **TokenOut.of(changed.tokens).model_dump(),
            sessions_revoked=changed.sessions_revoked,
            api_keys_revoked=changed.api_keys_revoked,
            api_keys_active=changed.api_keys_active,
        )


class ApiKeyOut(BaseModel):
    """An API key as listed: never the key itself."""

    id: uuid.UUID
    name: str
    prefix: str
    status: Literal["active", "expired", "revoked"]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    organisation_id: uuid.UUID
    role: str
    """The key's role in its organisation (its creator's current role caps it on each use)."""
    operator: bool = False
    """Whether it carries its creator's operator powers (asked for at creation)."""

    @classmethod
    def fields_of(cls, view: ApiKeyView) -> dict[str, Any]:
        return {
            "id": view.id,
            "organisation_id": view.organisation_id,
            "role": view.role,
            "operator": view.operator,
            "name": view.name,
            "prefix": view.prefix,
            "status": view.status,
            "created_at": view.created_at,
            "last_used_at": view.last_used_at,
            "expires_at": view.expires_at,
            "revoked_at": view.revoked_at,
        }

    @classmethod
    def of(cls, view: ApiKeyView) -> ApiKeyOut:
        return cls(**cls.fields_of(view))


class CreatedApiKeyOut(ApiKeyOut):
    key: str
    """Shown in this response only."""

    @classmethod
    def of_created(cls, created: CreatedApiKey) -> CreatedApiKeyOut:
        return cls(**ApiKeyOut.fields_of(created.view), key=created.key)


class ApiKeyListOut(BaseModel):
    api_keys: list[ApiKeyOut]


class ToolOut(BaseModel):
    id: str
    family: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    auth_provider: str | None
    scopes: list[str]
    effect: str
    timeout_s: float
    source: str = "installed"
    version: int | None = None


class ToolListOut(BaseModel):
    tools: list[ToolOut]


class StrategyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="What an agent's `config.strategy` names.")
    title: str
    description: str


class StrategyListOut(BaseModel):
    strategies: list[StrategyOut]


class ToolDetailOut(ToolOut):
    """One tool; custom tools (yours) add their definition, version and versions."""

    kind: Literal["python", "http", "mcp"] | None = None
    latest_version: int | None = None
    versions: list[int] | None = None
    limits: dict[str, Any] | None = None
    network: dict[str, Any] | None = None
    implementation: dict[str, Any] | None = None
    digest: str | None = None
    created_at: datetime | None = None
    shared_role: str | None = None
    """A custom tool's: None, private to its owner; else shared with `shared_organisation_id`,
    members acting on it with at most this role."""
    shared_organisation_id: uuid.UUID | None = None


class CustomToolSavedOut(BaseModel):
    tool_id: str
    version: int
    tool: ToolDetailOut


class SandboxedPluginOut(BaseModel):
    name: str
    distribution: str
    version: str
    image: str
    revision: int
    tools: list[str]
    allow_hosts: list[str]
    installed_at: datetime
    updated_at: datetime


class SandboxedPluginListOut(BaseModel):
    plugins: list[SandboxedPluginOut]


class AgentOut(BaseModel):
    id: uuid.UUID
    name: str
    tools: list[str]
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    owner_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    shared_role: str | None = None
    """None: private to its owner; else shared with its organisation with this role."""
    version: int = 1
    """Its newest config version (GET /agents/{id}/versions)."""

    @classmethod
    def of(cls, view: AgentView) -> AgentOut:
        return cls(
            id=view.id,
            name=view.name,
            tools=view.tools,
            config=view.config,
            created_at=view.created_at,
            updated_at=view.updated_at,
            owner_id=view.owner_id,
            organisation_id=view.organisation_id,
            shared_role=view.shared_role,
            version=view.version,
        )


class AgentListOut(BaseModel):
    agents: list[AgentOut]


class AgentSavedOut(BaseModel):
    agent_id: uuid.UUID
    auth_required: bool
    auth_url: str | None
    missing_scopes: dict[str, list[str]]
    agent: AgentOut

    @classmethod
    def of(cls, saved: AgentSaved) -> AgentSavedOut:
        return cls(
            agent_id=saved.agent.id,
            auth_required=saved.auth.required,
            auth_url=saved.auth.auth_url,
            missing_scopes={p: sorted(s) for p, s in saved.auth.missing.items()},
            agent=AgentOut.of(saved.agent),
        )


class SecretNamesOut(BaseModel):
    names: list[str]


class ExecutionOut(BaseModel):
    execution_id: uuid.UUID
    agent_id: uuid.UUID
    status: str
    input: Any
    output: dict[str, Any] | None
    error: str | None
    steps: list[dict[str, Any]]
    duration_ms: int | None
    cached: bool
    executor: str
    thread_id: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    agent_version: int | None = None
    """The agent's config version the run ran (GET /agents/{id}/versions/{n})."""
    schedule_id: uuid.UUID | None = None
    """The schedule that fired the run (None: a caller started it)."""
    auth_url: str | None = None
    pending_approval: dict[str, Any] | None = None
    pending_approvals: list[dict[str, Any]] | None = None
    approval_expires_at: datetime | None = None

    @classmethod
    def of(cls, view: ExecutionView) -> ExecutionOut:
        fields = {name: getattr(view, name) for name in cls.model_fields if name != "execution_id"}
        return cls(execution_id=view.id, **fields)


class ExecutionListOut(BaseModel):
    executions: list[ExecutionOut]
    next_cursor: str | None


class WebhookSecretOut(BaseModel):
    secret: str


class HealthOut(BaseModel):
    status: str


class VersionOut(BaseModel):
    agent_id: uuid.UUID
    version: int
    name: str
    tools: list[str]
    config: dict[str, Any]
    author_id: uuid.UUID | None
    created_at: datetime
    rolled_back_from: int | None = None
    """The version this one copies, when a rollback made it."""

    @classmethod
    def of(cls, view: VersionView) -> VersionOut:
        return cls(**{name: getattr(view, name) for name in cls.model_fields})


class VersionListOut(BaseModel):
    versions: list[VersionOut]


class ChangeOut(BaseModel):
    path: str
    """Dotted: `name`, `tools`, `config.limits.max_steps` (lists are compared whole)."""
    kind: Literal["added", "removed", "changed"]
    old: Any = None
    new: Any = None


class VersionDiffOut(BaseModel):
    agent_id: uuid.UUID
    from_version: int
    to_version: int
    changes: list[ChangeOut]

    @classmethod
    def of(cls, found: VersionDiff) -> VersionDiffOut:
        return cls(
            agent_id=found.agent_id, from_version=found.from_version,
            to_version=found.to_version,
            changes=[ChangeOut(**change.as_json()) for change in found.changes],
        )  # fmt: skip


class ThreadOut(BaseModel):
    thread_id: str
    turns: int
    first_at: datetime
    last_at: datetime

    @classmethod
    def of(cls, view: ThreadView) -> ThreadOut:
        return cls(thread_id=view.thread_id, turns=view.turns, first_at=view.first_at,
                   last_at=view.last_at)  # fmt: skip


class ThreadListOut(BaseModel):
    threads: list[ThreadOut]


class TurnOut(BaseModel):
    execution_id: uuid.UUID
    status: str
    input: Any
    output: dict[str, Any] | None
    created_at: datetime

    @classmethod
    def of(cls, view: TurnView) -> TurnOut:
        return cls(execution_id=view.execution_id, status=view.status, input=view.input,
                   output=view.output, created_at=view.created_at)  # fmt: skip


class ThreadTurnsOut(BaseModel):
    thread_id: str
    turns: list[TurnOut]
