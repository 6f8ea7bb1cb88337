"""Reading, diffing and rolling back an agent's config versions (written by `version_log`).

Each call first reads the agent as the policy allows (another member's private agent or
another organisation's is NOT_FOUND, and so are its versions); a rollback is an ordinary
update to an old version's snapshot, checked like one, recorded as a new version."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from pasar_core.accounts.principal import Principal
from pasar_core.agents.config import AgentPatch
from pasar_core.agents.config_diff import Change, diff
from pasar_core.agents.service import AgentSaved, owned_agent, parse_agent_id, update_agent
from pasar_core.errors import NotFound
from pasar_core.schemas import parse_model
from pasar_core.services import Services
from pasar_core.storage.models import AgentVersion

MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class VersionView:
    agent_id: uuid.UUID
    version: int
    name: str
    tools: list[str]
    config: dict[str, Any]
    author_id: uuid.UUID | None
    created_at: datetime
    rolled_back_from: int | None = None

    @classmethod
    def of(cls, row: AgentVersion) -> VersionView:
        return cls(
            agent_id=row.agent_id, version=row.version, name=row.name, tools=list(row.tools),
            config=dict(row.config), author_id=row.author_id, created_at=row.created_at,
            rolled_back_from=row.rolled_back_from,
        )  # fmt: skip

    @property
    def snapshot(self) -> dict[str, Any]:
        return {"name": self.name, "tools": self.tools, "config": self.config}


@dataclass(frozen=True, slots=True)
class VersionDiff:
    agent_id: uuid.UUID
    from_version: int
    to_version: int
    changes: list[Change]


async def list_versions(
    services: Services,
    principal: Principal,
    agent_id: str | uuid.UUID,
    *,
    limit: int = 50,
    offset: int = 0,
) -> list[VersionView]:
    """The agent's versions, newest first."""
    async with services.sessionmaker() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.versions.list"
        )
        rows = await session.scalars(
            select(AgentVersion)
            .where(AgentVersion.agent_id == agent.id)
            .order_by(AgentVersion.version.desc())
            .limit(max(1, min(limit, MAX_PAGE)))
            .offset(max(0, offset))
        )
        return [VersionView.of(row) for row in rows]


async def _versions(
    services: Services, principal: Principal, agent_id: str | uuid.UUID, numbers: list[int]
) -> dict[int, VersionView]:
    async with services.sessionmaker() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.versions.read"
        )
        rows = await session.scalars(
            select(AgentVersion).where(
                AgentVersion.agent_id == agent.id, AgentVersion.version.in_(numbers)
            )
        )
        found = {row.version: VersionView.of(row) for row in rows}
    for number in numbers:
        if number not in found:
            raise NotFound(f"agent {str(agent.id)!r} has no version {number}")
    return found


async def get_version(
    services: Services, principal: Principal, agent_id: str | uuid.UUID, version: int
) -> VersionView:
    return (await _versions(services, principal, agent_id, [version]))[version]


async def diff_versions(
    services: Services, principal: Principal, agent_id: str | uuid.UUID, old: int, new: int
) -> VersionDiff:
    """What changed from version `old` to version `new` (either may be the newer)."""
    found = await _versions(services, principal, agent_id, [old, new])
    changes = diff(found[old].snapshot, found[new].snapshot)
    return VersionDiff(found[old].agent_id, old, new, changes)


async def rollback(
    services: Services, principal: Principal, agent_id: str | uuid.UUID, version: int
) -> AgentSaved:
    """Make the agent what `version` was again, as a new version: its tools and config are
    checked as an update's are (a tool since deleted refuses the rollback, changing nothing)."""
    old = await _versions(services, principal, agent_id, [version])
    patch = parse_model(AgentPatch, old[version].snapshot, what=f"version {version}")
    return await update_agent(
        services, principal, agent_id, patch,
        operation="agents.versions.rollback", rolled_back_from=version,
    )  # fmt: skip
