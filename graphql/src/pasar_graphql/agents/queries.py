"""Agent queries; each needs an authenticated caller and sees only the caller's agents."""

from __future__ import annotations

import strawberry
from pasar_core.agents.service import get_agent, list_agents
from pasar_core.strategies import strategy_catalogue

from pasar_graphql.agents.types import Agent, Strategy
from pasar_graphql.context import Info
from pasar_graphql.permissions import allowed


async def resolve_agents(info: Info, first: int = 50, offset: int = 0) -> list[Agent]:
    context = info.context
    views = await list_agents(
        context.services, await context.principal(), limit=first, offset=offset
    )
    return [Agent.of(view) for view in views]


async def resolve_agent(info: Info, id: strawberry.ID) -> Agent | None:
    context = info.context
    return Agent.of(await get_agent(context.services, await context.principal(), id))


def resolve_strategies(info: Info) -> list[Strategy]:
    views = strategy_catalogue(info.context.services.registry)
    return [Strategy(id=view.id, title=view.title, description=view.description) for view in views]


@strawberry.type
class AgentQueries:
    strategies = strawberry.field(
        resolver=resolve_strategies,
        permission_classes=allowed("agents.strategies"),
        description="The installed reasoning strategies, by id: what an agent's "
        "`config.strategy` may name.",
    )
    agents = strawberry.field(
        resolver=resolve_agents,
        permission_classes=allowed("agents.list"),
        description="Your agents, oldest first (the server caps `first`).",
    )
    agent = strawberry.field(
        resolver=resolve_agent,
        permission_classes=allowed("agents.read"),
        description="One of your agents; NOT_FOUND for an unknown or foreign id.",
    )
