"""Writing an agent's versions: every create, update and rollback leaves one immutable
snapshot of the agent (name, tools, config) with its author, in the same transaction."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.storage.models import Agent, AgentVersion


def snapshot(agent: Agent) -> dict[str, object]:
    """What a version keeps of an agent (also what two versions are diffed over)."""
    return {"name": agent.name, "tools": list(agent.tool_ids), "config": dict(agent.config)}


async def record_version(
    session: AsyncSession,
    agent: Agent,
    author_id: uuid.UUID | None,
    *,
    first: bool = False,
    rolled_back_from: int | None = None,
) -> int:
    """Add the agent's current state as its next version (1 when `first`) and return its
    number. Updates hold the agent's row locked (`owned_agent(lock=True)`), so two updates
    racing on one agent take consecutive numbers."""
    agent.version = 1 if first else agent.version + 1
    session.add(
        AgentVersion(
            agent_id=agent.id,
            version=agent.version,
            name=agent.name,
            tools=list(agent.tool_ids),
            config=dict(agent.config),
            author_id=author_id,
            rolled_back_from=rolled_back_from,
        )
    )
    await session.flush()
    return agent.version
