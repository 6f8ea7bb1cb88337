"""A direct tool call: one tool of an agent called with arguments, no model (an MCP client's
`tools/call`). It is an execution of the agent like any run (`parameters.kind: "tool_call"`,
input `{"tool": id, "arguments": {...}}`) and runs through the runner's own path: the agent's
declared tools only, consent and grants, the registry's input validation, secrets, approval
of gated effects, audit, steps, events and metrics.

The call is the reply of a model that asked for exactly that call (`DIRECT_CALL_ID`), so the
runner's resolution of open calls applies unchanged: a gated tool pauses the run until a person
decides; an approved (or edited) call runs once, a rejected one never; a call whose process
died mid-way re-runs only if it reads. The run ends with the tool's result as its output, or
`failed` with the tool's error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage

from pasar_core.agents.builder import RUN_HOOKS
from pasar_core.errors import ConnectionNotAttached, OAuthNotConfigured
from pasar_core.executions.approval import ApprovalRequired
from pasar_core.executions.authorization import missing_authorization, pause_event
from pasar_core.executions.context import RunContext
from pasar_core.executions.events import STEP_TYPES, stored_events
from pasar_core.executions.resume import replay
from pasar_core.executions.status import CANCEL_REQUESTED, ExecutionStatus
from pasar_core.executions.store import LeaseLost, RunLog, RunRecord
from pasar_core.storage.availability import is_unavailable

if TYPE_CHECKING:
    from pasar_core.executions.runner import RunnerHost

log = logging.getLogger("pasar.runner")
S = ExecutionStatus
KIND = "tool_call"
DIRECT_CALL_ID = "direct"
"""The tool call id of a direct call's one call (decisions name it)."""


def direct_input(tool_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The input column of a direct call."""
    return {"tool": tool_id, "arguments": arguments}


async def run_direct(host: RunnerHost, record: RunRecord, run_log: RunLog) -> str:
    from pasar_core.executions.runner import REFUSED, _Run, prepared

    call = record.input if isinstance(record.input, dict) else {}
    tool_id, arguments = str(call.get("tool", "")), call.get("arguments")
    if tool_id not in record.agent_tool_ids or not isinstance(arguments, dict):
        bare = await RunContext.prepare(
            host.services, dataclasses.replace(record, agent_tool_ids=[])
        )
        error = f"{REFUSED}: the agent does not declare a tool named {tool_id[:200]!r}"
        return await _Run(host, bare, run_log).end(S.FAILED, error=error)
    # Least privilege for one call: the scopes, consent and secrets of this tool alone. A tool
    # gone since the call was made (while it awaited approval) ends it failed, typed.
    ctx = await prepared(host, dataclasses.replace(record, agent_tool_ids=[tool_id]), run_log)
    if isinstance(ctx, str):
        return ctx
    run = _Run(host, ctx, run_log)
    try:
        needed = await missing_authorization(
            host.services, ctx.registry, user_id=record.user_id, agent_id=record.agent_id,
            tool_ids=ctx.tool_ids, grant_user=record.grant_user,
        )  # fmt: skip
    except (OAuthNotConfigured, ConnectionNotAttached) as error:
        return await run.end(S.FAILED, error=f"{error.code}: {error.message}")
    if needed is not None:
        return await run.pause(S.AWAITING_AUTHORIZATION, pause_event(needed))
    RUN_HOOKS.set(run.hooks())
    earlier = await stored_events(host.services.sessionmaker, record.id, 0)
    run_log.steps = [event.data for event in earlier if event.type in STEP_TYPES]
    state = replay(earlier)
    name = ctx.registry.tool(tool_id).spec.langchain_name
    asked = {"name": name, "args": arguments, "id": DIRECT_CALL_ID}
    state.messages.insert(0, AIMessage(content="", tool_calls=[asked]))
    try:
        async with asyncio.timeout(ctx.config.limits.timeout_s) as deadline:
            await run.resolve(state)
    except ApprovalRequired as paused:
        return await run.pause_for_approval(paused.call)
    except TimeoutError:
        if not deadline.expired():
            raise
        message = f"the call exceeded its {ctx.config.limits.timeout_s:g} s time limit"
        return await run.end(S.LIMIT_EXCEEDED, error=message)
    except asyncio.CancelledError as cancelled:
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()
        if CANCEL_REQUESTED in cancelled.args:
            return await asyncio.shield(run.end(S.CANCELLED, error="cancelled on request"))
        return await asyncio.shield(run.hand_back("its process stopped"))
    except LeaseLost:
        raise
    except Exception as error:  # a provider outage or a bug: recorded, never a crash loop
        if is_unavailable(error):
            raise  # nothing can be recorded now; the run is resumed once it can
        log.warning("execution %s failed: %s", record.id, type(error).__name__)
        return await run.end(S.FAILED, error=f"{type(error).__name__}: {error}")
    result = next(
        step for step in reversed(run_log.steps)
        if step["type"] == "tool_result" and step.get("tool_call_id") == DIRECT_CALL_ID
    )  # fmt: skip
    if "error" in result:
        return await run.end(S.FAILED, error=str(result["error"]))
    return await run.end(S.SUCCEEDED, output={"tool": tool_id, "result": result.get("result")})
