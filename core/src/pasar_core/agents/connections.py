"""OAuth grants attached to an agent explicitly: the only grants a run of another member's
(shared) agent may use. A user attaches their own grant; the owner's runs of their own agent
use the owner's grant without attaching it (see `RunRecord.grant_user`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.accounts.principal import Principal
from pasar_core.agents.service import owned_agent, parse_agent_id
from pasar_core.errors import Forbidden, NotFound
from pasar_core.services import Services
from pasar_core.storage.models import Agent, AgentConnection, AuthToken


@dataclass(frozen=True, slots=True)
class AttachedConnection:
    agent_id: uuid.UUID
    provider: str
    user_id: uuid.UUID


async def attach_connection(
    services: Services, principal: Principal, agent_id: str | uuid.UUID, provider: str
) -> AttachedConnection:
    """Attach the caller's grant for `provider` to the agent (replacing an earlier one)."""
    provider = provider[:100]
    async with services.sessionmaker.begin() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.connections.attach"
        )
        grant = await session.scalar(
            select(AuthToken.id).where(
                AuthToken.user_id == principal.user_id, AuthToken.provider == provider
            )
        )
        if grant is None:
            raise NotFound(f"you have no {provider} connection to attach")
        statement = insert(AgentConnection).values(
            agent_id=agent.id, provider=provider, user_id=principal.user_id
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[AgentConnection.agent_id, AgentConnection.provider],
                set_={"user_id": principal.user_id},
            )
        )
    return AttachedConnection(agent.id, provider, principal.user_id)


async def detach_connection(
    services: Services, principal: Principal, agent_id: str | uuid.UUID, provider: str
) -> None:
    """Detach the grant attached for `provider`: the attaching user (always, even once the
    agent is private again or hidden from them: the attachment is theirs) or the agent's owner."""
    provider = provider[:100]
    agent_uuid = parse_agent_id(agent_id)
    async with services.sessionmaker.begin() as session:
        mine = await session.execute(
            delete(AgentConnection)
            .where(AgentConnection.agent_id == agent_uuid, AgentConnection.provider == provider,
                   AgentConnection.user_id == principal.user_id)
            .returning(AgentConnection.agent_id)
        )  # fmt: skip
        if mine.first() is not None:
            return
        agent = await owned_agent(
            session, principal, agent_uuid, operation="agents.connections.detach"
        )
        attached = await session.scalar(
            select(AgentConnection.user_id).where(
                AgentConnection.agent_id == agent.id, AgentConnection.provider == provider
            )
        )
        if attached is None:
            raise NotFound(f"no {provider} connection is attached to the agent")
        if principal.user_id != agent.owner_id:
            raise Forbidden("only who attached a connection, or the agent's owner, detaches it")
        await session.execute(
            delete(AgentConnection).where(
                AgentConnection.agent_id == agent.id, AgentConnection.provider == provider
            )
        )


async def end_attachments(
    session: AsyncSession, user_id: uuid.UUID, organisation_id: uuid.UUID
) -> None:
    """The user's attachments to the organisation's agents go with their membership (the
    caller's transaction; runs ignore such attachments anyway: `executions.store`)."""
    in_organisation = select(Agent.id).where(Agent.organisation_id == organisation_id)
    await session.execute(
        delete(AgentConnection).where(
            AgentConnection.user_id == user_id, AgentConnection.agent_id.in_(in_organisation)
        )
    )


async def attached_connections(
    services: Services, principal: Principal, agent_id: str | uuid.UUID
) -> list[AttachedConnection]:
    async with services.sessionmaker() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.read"
        )
        rows = await session.execute(
            select(AgentConnection.provider, AgentConnection.user_id)
            .where(AgentConnection.agent_id == agent.id)
            .order_by(AgentConnection.provider)
        )
        return [AttachedConnection(agent.id, provider, user) for provider, user in rows]
