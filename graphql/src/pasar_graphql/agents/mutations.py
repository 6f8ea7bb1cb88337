"""Agent mutations: input is validated by `pasar_core` (`AgentInput`, `AgentPatch`)."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from pasar_core.agents.config import AgentInput, AgentPatch
from pasar_core.agents.service import (
    AgentSaved,
    create_agent,
    delete_agent,
    saved_as_json,
    saved_from_json,
    update_agent,
)
from pasar_core.schemas import parse_model

from pasar_graphql.agents.types import AgentSavedPayload, CreateAgentInput, UpdateAgentInput
from pasar_graphql.context import Info
from pasar_graphql.idempotency import once
from pasar_graphql.permissions import allowed


async def resolve_create_agent(
    info: Info,
    input: CreateAgentInput,
    idempotency_key: Annotated[
        str | None,
        strawberry.argument(description="The same key and input answer the first result again."),
    ] = None,
) -> AgentSavedPayload:
    context = info.context
    principal = await context.principal()
    data = parse_model(AgentInput, input.as_data(), what="agent")

    async def create() -> AgentSaved:
        return await create_agent(context.services, principal, data)

    async def load(stored: Any) -> AgentSaved:
        return saved_from_json(stored)

    saved = await once(info, "createAgent", idempotency_key, input.as_data(), create,
                       saved_as_json, load)  # fmt: skip
    return AgentSavedPayload.of(saved)


async def resolve_update_agent(
    info: Info, id: strawberry.ID, input: UpdateAgentInput
) -> AgentSavedPayload:
    context = info.context
    principal = await context.principal()
    patch = parse_model(AgentPatch, input.as_data(), what="agent changes")
    return AgentSavedPayload.of(await update_agent(context.services, principal, id, patch))


async def resolve_delete_agent(info: Info, id: strawberry.ID) -> bool:
    context = info.context
    await delete_agent(context.services, await context.principal(), id)
    return True


@strawberry.type
class AgentMutations:
    create_agent = strawberry.mutation(
        resolver=resolve_create_agent,
        permission_classes=allowed("agents.create"),
        description="Create an agent from installed tools.",
    )
    update_agent = strawberry.mutation(
        resolver=resolve_update_agent,
        permission_classes=allowed("agents.update"),
        description="Change one of your agents.",
    )
    delete_agent = strawberry.mutation(
        resolver=resolve_delete_agent,
        permission_classes=allowed("agents.delete"),
        description="Delete one of your agents; true when done.",
    )
