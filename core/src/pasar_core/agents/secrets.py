"""Per-agent secrets (database DSNs, API tokens): write-only through the API, encrypted at rest,
handed to a tool only when its family declares the secret's name."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.accounts.principal import Principal
from pasar_core.agents.service import owned_agent, parse_agent_id
from pasar_core.crypto import DecryptionFailed, Keyring, Sealed
from pasar_core.errors import NotFound, SecretUnreadable, ValidationFailed
from pasar_core.services import Services
from pasar_core.storage.models import AgentSecret
from pasar_core.tool_access import registry_for

log = logging.getLogger("pasar.secrets")


class SecretValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=1, max_length=8192)


def _associated_data(agent_id: uuid.UUID, name: str) -> str:
    return f"agent-secret|{agent_id}|{name}"


async def _known_secret(
    services: Services, owner_id: uuid.UUID, organisation_id: uuid.UUID, name: str
) -> None:
    registry = await registry_for(services, owner_id, None, organisation_id)
    known = {secret for family in registry.families.values() for secret in family.secrets}
    if name not in known:
        raise ValidationFailed(
            f"no tool family you can use names a secret {name[:100]!r}",
            details={"known": sorted(known)},
        )


async def set_secret(
    services: Services, principal: Principal, agent_id: str, name: str, value: str
) -> None:
    async with services.sessionmaker.begin() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.secrets.write"
        )
        await _known_secret(
            services, agent.owner_id, agent.organisation_id, name
        )  # after: foreign ids stay unseen
        sealed = services.keyring.seal_text(value, _associated_data(agent.id, name))
        statement = insert(AgentSecret).values(
            agent_id=agent.id, name=name, key_id=sealed.key_id, value_enc=sealed.blob
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[AgentSecret.agent_id, AgentSecret.name],
                set_={"key_id": sealed.key_id, "value_enc": sealed.blob,
                      "updated_at": datetime.now(UTC)},
            )
        )  # fmt: skip


async def delete_secret(services: Services, principal: Principal, agent_id: str, name: str) -> None:
    async with services.sessionmaker.begin() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.secrets.write"
        )
        result = await session.execute(
            delete(AgentSecret).where(AgentSecret.agent_id == agent.id, AgentSecret.name == name)
        )
        if not getattr(result, "rowcount", 0):
            raise NotFound(f"the agent has no secret named {name[:100]!r}")


async def secret_names(services: Services, principal: Principal, agent_id: str) -> list[str]:
    async with services.sessionmaker() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.secrets.list"
        )
        names = await session.scalars(
            select(AgentSecret.name)
            .where(AgentSecret.agent_id == agent.id)
            .order_by(AgentSecret.name)
        )
        return list(names)


async def load_secrets(
    session: AsyncSession, keyring: Keyring, agent_id: uuid.UUID, names: Iterable[str]
) -> dict[str, str]:
    """Decrypt the named secrets of an agent (for the run-time; never returned to clients).
    `SecretUnreadable` when one fails to decrypt (changed, copied from another agent, or its
    key is gone): the tool call fails with that code and the user sets the secret again."""
    wanted = list(names)
    if not wanted:
        return {}
    rows = await session.scalars(
        select(AgentSecret).where(AgentSecret.agent_id == agent_id, AgentSecret.name.in_(wanted))
    )
    values: dict[str, str] = {}
    for row in rows:
        try:
            values[row.name] = keyring.open_text(
                Sealed(row.key_id, row.value_enc), _associated_data(agent_id, row.name)
            )
        except DecryptionFailed:
            log.warning("secret %r of agent %s fails to decrypt", row.name, agent_id)
            raise SecretUnreadable(row.name) from None
    return values
