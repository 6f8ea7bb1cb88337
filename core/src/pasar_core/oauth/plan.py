"""The scope plan of a set of actions, for people choosing them: the least scopes per provider,
what each is for, how it compares with an existing agent's, and what the user must still grant."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select

from pasar_core.accounts.principal import Principal
from pasar_core.oauth import scopes as compiler
from pasar_core.oauth.tokens import ACTIVE
from pasar_core.services import Services
from pasar_core.storage.models import Agent, AuthToken
from pasar_core.tool_access import registry_for


@dataclass(frozen=True, slots=True)
class ProviderPlan:
    compiled: compiler.ProviderScopes
    diff: compiler.ScopeDiff | None  # against the agent's current tools; None without an agent
    not_granted: frozenset[str] | None  # None without a caller


async def scope_plan(
    services: Services,
    tool_ids: Collection[str],
    *,
    principal: Principal | None = None,
    agent_id: uuid.UUID | None = None,
) -> list[ProviderPlan]:
    """Unknown tool ids raise `UnknownTools`; `agent_id` needs the owner as `principal`."""
    from pasar_core.agents.service import owned_agent

    registry = (
        await registry_for(services, principal.user_id, None, principal.organisation_id)
        if principal
        else services.registry
    )
    registry.require_tools(tool_ids)
    plans = compiler.compile_scopes(registry, tool_ids)
    before: dict[str, frozenset[str]] | None = None
    granted: dict[str, list[str]] = {}
    if principal is not None:
        async with services.sessionmaker() as session:
            if agent_id is not None:
                agent: Agent = await owned_agent(
                    session, principal, agent_id, operation="agents.read"
                )
                known = [t for t in agent.tool_ids if t in registry.tools]
                before = compiler.scope_sets(compiler.compile_scopes(registry, known))
            rows = await session.scalars(
                select(AuthToken).where(
                    AuthToken.user_id == principal.user_id, AuthToken.status == ACTIVE
                )
            )
            granted = {row.provider: list(row.scopes) for row in rows}
    providers = sorted(set(plans) | set(before or {}))
    result = []
    for provider_id in providers:
        plan = plans.get(provider_id) or compiler.ProviderScopes(provider_id, ())
        spec = registry.auth_providers.get(provider_id)
        result.append(
            ProviderPlan(
                compiled=plan,
                diff=None
                if before is None
                else compiler.diff(before.get(provider_id, frozenset()), plan.scope_ids),
                not_granted=None
                if principal is None
                else compiler.uncovered(spec, granted.get(provider_id, []), plan.scope_ids),
            )
        )
    return result
