"""Runs that need OAuth consent pause as `awaiting_authorization` (before any step, so no
side effect is repeated) and resume when the consent callback succeeds."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from pasar_core.errors import ReauthorizationRequired
from pasar_core.executions.events import publish
from pasar_core.oauth.enforcement import stored_grant_gap
from pasar_core.registry import Registry
from pasar_core.services import Services
from pasar_core.storage.models import Execution

AWAITING = "awaiting_authorization"


async def missing_authorization(
    services: Services,
    registry: Registry,
    *,
    user_id: uuid.UUID,
    agent_id: uuid.UUID,
    tool_ids: list[str],
) -> ReauthorizationRequired | None:
    """The first consent the agent's tools still need, with its link, judged from the stored
    grants alone: nothing here decrypts or calls a provider, so nothing here can crash a run.
    A grant that fails only when used fails that tool call instead (a typed tool error)."""
    checked: set[str] = set()
    for tool_id in tool_ids:
        provider = registry.tool(tool_id).spec.auth_provider
        if provider is None or provider in checked:
            continue
        checked.add(provider)
        needed = await stored_grant_gap(
            services, registry, user_id=user_id, agent_tool_ids=tool_ids, tool_id=tool_id,
            agent_id=agent_id,
        )  # fmt: skip
        if needed is not None:
            return needed
    return None


def pause_event(needed: ReauthorizationRequired) -> dict[str, Any]:
    return {
        "status": AWAITING,
        "provider": needed.provider,
        "auth_url": needed.auth_url,
        "missing": sorted(needed.missing),
    }


async def resume_awaiting(services: Services, agent_id: uuid.UUID) -> list[uuid.UUID]:
    """Queue the agent's paused runs again (after a successful consent)."""
    from pasar_core.executions.service import next_seq, runtime_of
    from pasar_core.executions.service import submit_run as submit

    async with services.sessionmaker.begin() as session:
        paused = list(
            await session.scalars(
                select(Execution)
                .where(Execution.agent_id == agent_id, Execution.status == AWAITING)
                .with_for_update(skip_locked=True)
            )
        )
        for execution in paused:
            execution.status = "queued"
            await publish(
                session, execution.id, await next_seq(session, execution.id), "status",
                {"status": "queued", "resumed": True},
            )  # fmt: skip
    runtime = runtime_of(services)
    for execution in paused:
        await submit(services, runtime.executor(execution.executor), execution.id)
    return [execution.id for execution in paused]
