"""Create, read, update, delete and share agents. An agent lives in the organisation it was
created in and is private to its owner or shared with that organisation with a role; every
call is judged by the policy table (pasar_core.authz) with the row the call's own statement
read: another organisation's agent, or another member's private one, is NOT_FOUND."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.accounts.principal import Principal
from pasar_core.agents.config import AgentInput, AgentPatch
from pasar_core.agents.model_config import check_model_config
from pasar_core.agents.version_log import record_version
from pasar_core.audit import record as audit
from pasar_core.audit.record import Action, Actor
from pasar_core.authz.checks import check_resource
from pasar_core.authz.roles import Role
from pasar_core.errors import NotFound
from pasar_core.oauth.consent import missing_scopes
from pasar_core.registry import Registry
from pasar_core.services import Services
from pasar_core.storage.models import Agent, AgentTool
from pasar_core.storage.reads import CompiledRead, Reads
from pasar_core.tool_access import registry_for

MAX_PAGE = 200

_TOOL_IDS = (
    select(func.array_agg(aggregate_order_by(AgentTool.tool_id, AgentTool.position)))
    .where(AgentTool.agent_id == Agent.id)
    .scalar_subquery()
)
_AGENT_ROW = select(
    Agent.id, Agent.name, Agent.config, Agent.created_at, Agent.updated_at,
    Agent.owner_id, Agent.organisation_id, Agent.shared_role, Agent.version,
    _TOOL_IDS.label("tool_ids"),
)  # fmt: skip
# What the caller may see at all, in the WHERE of the read itself: their organisation's agents
# that are theirs or shared (the role the operation needs is checked on the row it returns).
_VISIBLE = (
    Agent.organisation_id == bindparam("organisation_id"),
    or_(Agent.owner_id == bindparam("user_id"), Agent.shared_role.is_not(None)),
)
# Reads are one statement each: the agent with its tool ids and its sharing.
READ_AGENT = CompiledRead(_AGENT_ROW.where(Agent.id == bindparam("agent_id"), *_VISIBLE))
READ_AGENTS = CompiledRead(
    _AGENT_ROW.where(*_VISIBLE)
    .order_by(Agent.created_at, Agent.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)

READ_NEWEST_AGENTS = CompiledRead(
    _AGENT_ROW.where(*_VISIBLE)
    .order_by(Agent.created_at.desc(), Agent.id.desc())
    .limit(bindparam("limit"))
)

READ_AGENTS_NAMED = CompiledRead(
    _AGENT_ROW.where(*_VISIBLE, Agent.name == bindparam("name"))
    .order_by(Agent.created_at, Agent.id)
    .limit(bindparam("limit"))
)


@dataclass(frozen=True, slots=True)
class AuthRequirement:
    """Scopes the agent's tools need that the user has not granted yet, per provider."""

    missing: Mapping[str, frozenset[str]]
    auth_url: str | None = None

    @property
    def required(self) -> bool:
        return any(self.missing.values())


@dataclass(frozen=True, slots=True)
class AgentView:
    id: uuid.UUID
    name: str
    tools: list[str]
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    owner_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    shared_role: str | None = None
    version: int = 1

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> AgentView:
        """From a row of `READ_AGENT` / `READ_AGENTS`."""
        return cls(
            id=row["id"],
            name=row["name"],
            tools=list(row["tool_ids"] or ()),
            config=dict(row["config"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            owner_id=row["owner_id"],
            organisation_id=row["organisation_id"],
            shared_role=row["shared_role"],
            version=row["version"],
        )

    @classmethod
    def of(cls, agent: Agent) -> AgentView:
        return cls(
            id=agent.id,
            name=agent.name,
            tools=agent.tool_ids,
            config=dict(agent.config),
            created_at=agent.created_at,
            updated_at=agent.updated_at,
            owner_id=agent.owner_id,
            organisation_id=agent.organisation_id,
            shared_role=agent.shared_role,
            version=agent.version,
        )


@dataclass(frozen=True, slots=True)
class AgentSaved:
    agent: AgentView
    auth: AuthRequirement


def saved_as_json(saved: AgentSaved) -> dict[str, Any]:
    """A saved agent as JSON (kept as an idempotent request's first answer)."""
    agent = saved.agent
    return {
        "agent": {"id": str(agent.id), "name": agent.name, "tools": agent.tools,
                  "config": agent.config, "created_at": agent.created_at.isoformat(),
                  "updated_at": agent.updated_at.isoformat(), "version": agent.version},
        "auth": {"missing": {p: sorted(s) for p, s in saved.auth.missing.items()},
                 "auth_url": saved.auth.auth_url},
    }  # fmt: skip


def saved_from_json(data: Mapping[str, Any]) -> AgentSaved:
    agent, auth = data["agent"], data["auth"]
    view = AgentView(
        id=uuid.UUID(agent["id"]), name=agent["name"], tools=list(agent["tools"]),
        config=dict(agent["config"]), created_at=datetime.fromisoformat(agent["created_at"]),
        updated_at=datetime.fromisoformat(agent["updated_at"]),
        version=int(agent.get("version", 1)),
    )  # fmt: skip
    missing = {provider: frozenset(scopes) for provider, scopes in auth["missing"].items()}
    return AgentSaved(view, AuthRequirement(missing, auth["auth_url"]))


def _reads(services: Services) -> Reads:
    if services.reads is None:
        raise RuntimeError("no read pool: Services are built by pasar.lifecycle")
    return services.reads


def parse_agent_id(raw: str | uuid.UUID) -> uuid.UUID:
    """Agent ids are UUIDs; anything else is simply an agent that does not exist."""
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"no agent with id {str(raw)[:100]!r}") from None


def required_scopes(registry: Registry, tool_ids: Iterable[str]) -> dict[str, set[str]]:
    needed: dict[str, set[str]] = defaultdict(set)
    for tool_id in tool_ids:
        spec = registry.tool(tool_id).spec
        if spec.auth_provider:
            needed[spec.auth_provider] |= spec.scopes
    return dict(needed)


async def _auth_requirement(
    session: AsyncSession,
    services: Services,
    registry: Registry,
    user_id: uuid.UUID,
    agent_id: uuid.UUID,
    tool_ids: list[str],
) -> AuthRequirement:
    """The least scopes the tools need beyond the user's grants (scope hierarchy included),
    and a consent link for them bound to this agent (see `pasar_core.oauth.consent`)."""
    result = await missing_scopes(
        session, services, registry, user_id=user_id, agent_id=agent_id, tool_ids=tool_ids
    )
    return AuthRequirement(missing=result.missing, auth_url=result.auth_url)


def check_agent(principal: Principal, operation: str, agent: Agent | AgentView) -> None:
    """The policy's answer for this agent (NOT_FOUND when the caller may not see it)."""
    assert agent.organisation_id is not None
    assert agent.owner_id is not None
    check_resource(
        principal, operation, what="agent", resource_id=agent.id,
        organisation_id=agent.organisation_id, owner_id=agent.owner_id,
        shared_role=agent.shared_role,
    )  # fmt: skip


async def owned_agent(
    session: AsyncSession,
    principal: Principal,
    agent_id: uuid.UUID,
    *,
    operation: str,
    lock: bool = False,
) -> Agent:
    """The agent if the caller may do `operation` on it; another organisation's or another
    member's private agent is reported exactly like a missing one: ids never leak. `lock`:
    hold its row until the transaction ends (a change that numbers a new version)."""
    agent = await session.get(Agent, agent_id, with_for_update=lock)
    if agent is None:
        raise NotFound(f"no agent with id {str(agent_id)!r}")
    check_agent(principal, operation, agent)
    return agent


def _link_tools(agent: Agent, tool_ids: list[str]) -> None:
    agent.tool_links = [
        AgentTool(tool_id=tool_id, position=position) for position, tool_id in enumerate(tool_ids)
    ]


async def create_agent(services: Services, principal: Principal, data: AgentInput) -> AgentSaved:
    registry = await registry_for(
        services, principal.user_id, data.tools, principal.organisation_id
    )
    registry.require_tools(data.tools)
    registry.check_tool_settings(data.config.tool_settings, data.tools)
    check_model_config(registry, data.config)
    async with services.sessionmaker.begin() as session:
        agent = Agent(
            owner_id=principal.user_id,
            organisation_id=principal.organisation_id,
            name=data.name,
            config=data.config.model_dump(mode="json"),
        )
        _link_tools(agent, data.tools)
        session.add(agent)
        await session.flush()
        await record_version(session, agent, principal.user_id, first=True)
        await session.refresh(agent)
        auth = await _auth_requirement(
            session, services, registry, principal.user_id, agent.id, data.tools
        )
        await audit.record(session, Action.AGENT_CREATED, Actor.of(principal),
                           target=("agent", agent.id), details={"tools": data.tools})  # fmt: skip
        return AgentSaved(agent=AgentView.of(agent), auth=auth)


async def get_agent(
    services: Services, principal: Principal, agent_id: str | uuid.UUID
) -> AgentView:
    parsed = parse_agent_id(agent_id)
    row = await _reads(services).fetch_row(
        READ_AGENT, agent_id=parsed, user_id=principal.user_id,
        organisation_id=principal.organisation_id,
    )  # fmt: skip
    if row is None:  # another user's agent is reported exactly like a missing one
        raise NotFound(f"no agent with id {str(parsed)!r}")
    view = AgentView.of_row(row)
    check_agent(principal, "agents.read", view)
    return view


async def list_agents(
    services: Services, principal: Principal, *, limit: int = 50, offset: int = 0
) -> list[AgentView]:
    rows = await _reads(services).fetch_rows(
        READ_AGENTS,
        user_id=principal.user_id,
        organisation_id=principal.organisation_id,
        limit=max(1, min(limit, MAX_PAGE)),
        offset=max(0, offset),
    )
    return [AgentView.of_row(row) for row in rows]


async def newest_agents(
    services: Services, principal: Principal, *, limit: int = MAX_PAGE
) -> list[AgentView]:
    """The `limit` agents `principal` sees that were made last (one statement), newest first."""
    rows = await _reads(services).fetch_rows(
        READ_NEWEST_AGENTS,
        user_id=principal.user_id,
        organisation_id=principal.organisation_id,
        limit=max(1, min(limit, MAX_PAGE)),
    )
    return [AgentView.of_row(row) for row in rows]


async def agents_named(
    services: Services, principal: Principal, name: str, *, limit: int = 50
) -> list[AgentView]:
    """The agents `principal` sees that are named `name` (one statement), oldest first."""
    rows = await _reads(services).fetch_rows(
        READ_AGENTS_NAMED,
        user_id=principal.user_id,
        organisation_id=principal.organisation_id,
        name=name,
        limit=max(1, min(limit, MAX_PAGE)),
    )
    return [AgentView.of_row(row) for row in rows]


async def update_agent(
    services: Services,
    principal: Principal,
    agent_id: str | uuid.UUID,
    patch: AgentPatch,
    *,
    operation: str = "agents.update",
    rolled_back_from: int | None = None,
) -> AgentSaved:
    """Change the agent and record the result as its next version (`rolled_back_from`: the
    version a rollback copies)."""
    async with services.sessionmaker.begin() as session:
        # locked: concurrent updates take the next version numbers one after the other
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation=operation, lock=True
        )
        # The owner's tools: a member editing a shared agent sees the owner's custom tools
        # (and those shared with the agent's organisation that the owner may use).
        registry = await registry_for(services, agent.owner_id, patch.tools, agent.organisation_id)
        if patch.tools is not None:
            registry.require_tools(patch.tools)
        if patch.config is not None:
            check_model_config(registry, patch.config)
        tool_ids = patch.tools if patch.tools is not None else agent.tool_ids
        config = (
            patch.config.tool_settings if patch.config else agent.config.get("tool_settings", {})
        )
        registry.check_tool_settings(config, tool_ids)
        if patch.name is not None:
            agent.name = patch.name
        if patch.config is not None:
            agent.config = patch.config.model_dump(mode="json")
        if patch.tools is not None:
            _link_tools(agent, patch.tools)
        agent.updated_at = datetime.now(UTC)
        await session.flush()
        await session.refresh(agent)
        version = await record_version(
            session, agent, principal.user_id, rolled_back_from=rolled_back_from
        )
        auth = await _auth_requirement(
            session, services, registry, principal.user_id, agent.id, agent.tool_ids
        )
        changed = sorted(patch.model_dump(exclude_unset=True))
        details: dict[str, Any] = {"changed": changed, "version": version}
        if rolled_back_from is not None:
            details["rolled_back_from"] = rolled_back_from
        await audit.record(session, Action.AGENT_UPDATED, Actor.of(principal),
                           target=("agent", agent.id), details=details)  # fmt: skip
        return AgentSaved(agent=AgentView.of(agent), auth=auth)


async def delete_agent(services: Services, principal: Principal, agent_id: str | uuid.UUID) -> None:
    async with services.sessionmaker.begin() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.delete"
        )
        await session.delete(agent)
        await audit.record(session, Action.AGENT_DELETED, Actor.of(principal),
                           target=("agent", agent.id))  # fmt: skip


class SharingInput(BaseModel):
    """`role`: share with the agent's organisation, members acting with at most this role;
    None: private to its owner again."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None


async def share_agent(
    services: Services, principal: Principal, agent_id: str | uuid.UUID, sharing: SharingInput
) -> AgentView:
    """Share the caller's agent with its organisation, or make it private (owner only)."""
    async with services.sessionmaker.begin() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.share"
        )
        agent.shared_role = sharing.role
        agent.updated_at = datetime.now(UTC)
        await session.flush()
        await session.refresh(agent)
        await audit.record(session, Action.AGENT_SHARED, Actor.of(principal),
                           target=("agent", agent.id), details={"role": sharing.role})  # fmt: skip
        return AgentView.of(agent)
