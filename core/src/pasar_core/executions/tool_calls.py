"""Calling one of an agent's tools directly, with no model (`executions.direct` runs it): the
tools an agent offers, and starting a call as an execution of the agent.

The same call (this caller, agent, tool and arguments) while an earlier one is still queued,
running or waiting for a decision or consent is that execution, not a second one: a client
that repeats a call awaiting approval sees the one pause, and the tool runs at most once.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from pasar_core.accounts.principal import Principal
from pasar_core.agents.config import AgentConfig
from pasar_core.agents.service import owned_agent, parse_agent_id
from pasar_core.audit import record as audit
from pasar_core.audit.record import Action, Actor
from pasar_core.errors import ServiceUnavailable, ToolInputInvalid, ToolNotPermitted
from pasar_core.executions import store
from pasar_core.executions.direct import KIND, direct_input
from pasar_core.executions.runtime import InlineExecutor, Runs
from pasar_core.executions.service import (
    ExecutionView,
    get_execution,
    submit_run,
    wait_until_finished,
)
from pasar_core.executions.status import ExecutionStatus
from pasar_core.schemas import validation_errors
from pasar_core.specs import ToolSpec
from pasar_core.storage.models import Execution
from pasar_core.tool_access import registry_for

S = ExecutionStatus
UNFINISHED = (S.QUEUED, S.RUNNING, S.AWAITING_APPROVAL, S.AWAITING_AUTHORIZATION)


@dataclass(frozen=True, slots=True)
class OfferedTool:
    """One tool an agent declares, and whether its effect makes a call wait for approval."""

    spec: ToolSpec
    needs_approval: bool


async def agent_tools(runs: Runs, principal: Principal, agent_id: str) -> list[OfferedTool]:
    """The tools the agent declares, in its order (the caller may read the agent)."""
    services = runs.services
    async with services.sessionmaker() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.read"
        )
        tool_ids, config = agent.tool_ids, AgentConfig.model_validate(agent.config)
        owner, organisation = agent.owner_id, agent.organisation_id
    registry = await registry_for(services, owner, tool_ids, organisation)
    gated = set(config.approval.require_for)
    return [
        OfferedTool(spec, spec.effect.value in gated)
        for spec in (
            registry.tool(tool_id).spec for tool_id in tool_ids if tool_id in registry.tools
        )
    ]


def call_digest(principal: Principal, tool_id: str, arguments: dict[str, Any]) -> str:
    """What finds the same call still unfinished (stored as the execution's input hash)."""
    material = {"runner": str(principal.user_id), "kind": KIND, "tool": tool_id, "args": arguments}
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def start_tool_call(
    runs: Runs,
    principal: Principal,
    agent_id: str,
    tool_id: str,
    arguments: dict[str, Any],
    *,
    wait_s: float,
    charge: Callable[[], Awaitable[None]] | None = None,
) -> ExecutionView:
    """Run one of the agent's declared tools with `arguments` as an execution of the agent
    (its `agents.execute` rule), waiting up to `wait_s` for it to end or pause. Refused before
    anything is recorded: a tool the agent does not declare (NOT_PERMITTED), arguments its
    input schema refuses (TOOL_INPUT_INVALID). `charge` (the caller's rate budget) is paid only
    for a new execution: a repeat of an unfinished call is free."""
    services = runs.services
    executor = runs.executor(None)
    if runs.draining and executor.name == "inline":
        raise ServiceUnavailable("this server is shutting down; send the call to another")
    digest = call_digest(principal, tool_id, arguments)
    # The tool and its arguments are checked before the transaction: the registry may read
    # through a connection of its own, and one call never holds two.
    async with services.sessionmaker() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.execute"
        )
        owner, organisation = agent.owner_id, agent.organisation_id
    if tool_id not in agent.tool_ids:
        raise ToolNotPermitted(tool_id, "the agent does not declare it")
    registry = await registry_for(services, owner, [tool_id], organisation)
    if tool_id not in registry.tools:
        raise ToolNotPermitted(tool_id, "it is no longer available to the agent")
    problems = validation_errors(registry.tool(tool_id).input_validator, arguments)
    if problems:
        raise ToolInputInvalid(
            f"invalid input for {tool_id}: {problems[0]['path']}: {problems[0]['message']}",
            details={"tool": tool_id, "errors": problems},
        )
    async with services.sessionmaker.begin() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.execute"
        )  # again, in the transaction that records the call
        if tool_id not in agent.tool_ids:
            raise ToolNotPermitted(tool_id, "the agent does not declare it")
        # One caller's identical calls are made one at a time, so a repeat finds the first.
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(digest))))
        earlier = await session.scalar(
            select(Execution.id)
            .where(
                Execution.agent_id == agent.id,
                Execution.user_id == principal.user_id,
                Execution.input_hash == digest,
                Execution.status.in_([status.value for status in UNFINISHED]),
            )
            .order_by(Execution.created_at.desc())
            .limit(1)
        )
        if earlier is not None:
            return await get_execution(runs, principal, earlier)
        if charge is not None:
            await charge()
        lease = uuid.uuid4() if isinstance(executor, InlineExecutor) else None
        values: dict[str, Any] = {
            "agent_id": agent.id, "user_id": principal.user_id,
            "organisation_id": agent.organisation_id,
            "input": direct_input(tool_id, arguments),
            "parameters": {"kind": KIND, "tool": tool_id}, "executor": executor.name,
            "input_hash": digest, "agent_version": agent.version,
        }  # fmt: skip
        execution_id = await store.create(
            session, values, status=S.QUEUED, event={"status": S.QUEUED.value, "kind": KIND},
            lease=lease, owner=runs.owner if lease else None,
        )  # fmt: skip
        await audit.record(
            session, Action.EXECUTION_STARTED, Actor.of(principal),
            target=("execution", execution_id),
            details={"agent_id": str(agent.id), "executor": executor.name, "kind": KIND,
                     "tool": tool_id},
        )  # fmt: skip
    await submit_run(runs, executor, execution_id, lease)
    await wait_until_finished(runs, execution_id, wait_s)
    return await get_execution(runs, principal, execution_id)
