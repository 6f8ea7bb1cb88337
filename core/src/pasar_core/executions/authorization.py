"""Runs that need OAuth consent pause as `awaiting_authorization` (before any step, so no
side effect is repeated) and resume when the consent callback succeeds."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from pasar_core.errors import ConnectionNotAttached, ReauthorizationRequired
from pasar_core.oauth.enforcement import stored_grant_gap
from pasar_core.registry import Registry
from pasar_core.services import Services
from pasar_core.storage.models import Execution

if TYPE_CHECKING:
    from pasar_core.executions.runtime import Runs

AWAITING = "awaiting_authorization"


async def missing_authorization(
    services: Services,
    registry: Registry,
    *,
    user_id: uuid.UUID,
    agent_id: uuid.UUID,
    tool_ids: list[str],
    grant_user: Callable[[str], uuid.UUID | None] | None = None,
) -> ReauthorizationRequired | None:
    """The first consent the agent's tools still need, with its link, judged from the stored
    grants alone: nothing here decrypts or calls a provider, so nothing here can crash a run.
    A grant that fails only when used fails that tool call instead (a typed tool error).
    `grant_user(provider)`: whose grant the run may use (default `user_id`); None raises
    CONNECTION_NOT_ATTACHED."""
    checked: set[str] = set()
    for tool_id in tool_ids:
        provider = registry.tool(tool_id).spec.auth_provider
        if provider is None or provider in checked:
            continue
        checked.add(provider)
        grantor = grant_user(provider) if grant_user is not None else user_id
        if grantor is None:
            raise ConnectionNotAttached(provider)
        needed = await stored_grant_gap(
            services, registry, user_id=grantor, agent_tool_ids=tool_ids, tool_id=tool_id,
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


async def resume_awaiting(runs: Runs, agent_id: uuid.UUID) -> list[uuid.UUID]:
    """Queue the agent's runs that wait for consent again (after a successful consent), each
    on its executor (an inline run in this process)."""
    from pasar_core.executions import store
    from pasar_core.executions.runtime import InlineExecutor
    from pasar_core.executions.service import submit_run
    from pasar_core.executions.status import ExecutionStatus

    async with runs.services.sessionmaker() as session:
        paused = list(
            await session.execute(
                select(Execution.id, Execution.executor).where(
                    Execution.agent_id == agent_id, Execution.status == AWAITING
                )
            )
        )
    resumed = []
    for execution_id, executor_name in paused:
        executor = runs.executor(executor_name)
        lease = uuid.uuid4() if isinstance(executor, InlineExecutor) else None
        queued = await store.transition(
            runs.engine, execution_id, ExecutionStatus.QUEUED,
            only_from={ExecutionStatus.AWAITING_AUTHORIZATION},
            event={"status": "queued", "resumed": True},
            values={"lease": lease, "owner": runs.owner if lease else None},
        )  # fmt: skip
        if queued is not None:
            await submit_run(runs, executor, execution_id, lease)
            resumed.append(execution_id)
    return resumed
