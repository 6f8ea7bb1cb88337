"""Execution queries, mutations and the `executionEvents` subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated, Any

import strawberry
from pasar_core.executions import service
from pasar_core.executions.decisions import ApprovalDecision
from pasar_core.executions.requests import ExecuteRequest
from pasar_core.schemas import parse_model
from strawberry.scalars import JSON

from pasar_graphql.context import Info
from pasar_graphql.executions.types import (
    Execution,
    ExecutionEvent,
    ExecutionPage,
    RunParametersInput,
)
from pasar_graphql.idempotency import Hold, once_creating
from pasar_graphql.permissions import allowed


async def resolve_execute_agent(
    info: Info,
    agent_id: strawberry.ID,
    input: JSON,
    parameters: RunParametersInput | None = None,
    idempotency_key: Annotated[
        str | None,
        strawberry.argument(
            description="The same key and arguments start no second run: they answer the first "
            "run (as it is now).",
        ),
    ] = None,
) -> Execution:
    context = info.context
    principal = await context.principal()
    body: dict[str, object] = {"input": input}
    if parameters is not None:
        body["parameters"] = {k: v for k, v in vars(parameters).items() if v is not None}
    request = parse_model(ExecuteRequest, body, what="execution")
    runs = context.execution_runs()

    async def start(hold: Hold | None) -> service.ExecutionView:
        return await service.start_execution(runs, principal, agent_id, request, hold=hold)

    async def current(execution_id: str) -> service.ExecutionView:
        return await service.get_execution(runs, principal, execution_id)

    async def load(stored: Any) -> service.ExecutionView:
        return await current(str(stored["execution_id"]))

    view = await once_creating(
        info, "executeAgent", idempotency_key, {"agent_id": agent_id, **body},
        start, lambda v: {"execution_id": str(v.id)}, load, current,
    )  # fmt: skip
    return Execution.of(view)


async def resolve_execution(info: Info, id: strawberry.ID) -> Execution:
    context = info.context
    return Execution.of(
        await service.get_execution(context.execution_runs(), await context.principal(), id)
    )


async def resolve_executions(
    info: Info, agent_id: strawberry.ID, first: int = 20, after: str | None = None
) -> ExecutionPage:
    context = info.context
    views, cursor = await service.list_executions(
        context.execution_runs(), await context.principal(), agent_id, first=first, after=after
    )
    return ExecutionPage(
        nodes=[Execution.of(view) for view in views],
        end_cursor=cursor,
        has_next_page=cursor is not None,
    )


async def resolve_cancel_execution(info: Info, id: strawberry.ID) -> Execution:
    context = info.context
    view = await service.cancel_execution(context.execution_runs(), await context.principal(), id)
    return Execution.of(view)


async def resolve_execution_events(
    info: Info, id: strawberry.ID, after: int = 0
) -> AsyncGenerator[ExecutionEvent, None]:
    context = info.context
    view = await service.get_execution(context.execution_runs(), await context.principal(), id)
    hub = context.execution_runs().hub
    async for event in hub.subscribe(view.id, max(0, after)):
        yield ExecutionEvent.of(event)


@strawberry.input(description="A decision on one pending call (`edit` sends new `args`).")
class CallDecisionInput:
    tool_call_id: str
    decision: str = strawberry.field(description="approve, reject or edit.")
    args_hash: str = strawberry.field(description="The args_hash the pending call was shown with.")
    args: JSON | None = None
    note: str | None = None


async def resolve_decide_approval(
    info: Info,
    id: strawberry.ID,
    decision: str | None = None,
    note: str | None = None,
    decisions: list[CallDecisionInput] | None = None,
) -> Execution:
    context = info.context
    raw: dict[str, Any] = {"decision": decision, "note": note}
    if decisions is not None:
        raw = {"decisions": [
            {"tool_call_id": item.tool_call_id, "decision": item.decision,
             "args_hash": item.args_hash, "note": item.note}
            | ({"args": item.args} if item.args is not None else {})
            for item in decisions
        ]} | ({"note": note} if note is not None else {})  # fmt: skip
        if decision is not None:
            raw["decision"] = decision
    body = parse_model(ApprovalDecision, raw, what="decision")
    view = await service.decide_approval(
        context.execution_runs(), await context.principal(), id, body
    )
    return Execution.of(view)


@strawberry.type
class ExecutionQueries:
    execution = strawberry.field(
        resolver=resolve_execution,
        permission_classes=allowed("executions.read"),
        description="One of your executions (NOT_FOUND otherwise).",
    )
    executions = strawberry.field(
        resolver=resolve_executions,
        permission_classes=allowed("agents.executions.list"),
        description="An agent's executions, newest first.",
    )


@strawberry.type
class ExecutionMutations:
    execute_agent = strawberry.mutation(
        resolver=resolve_execute_agent,
        permission_classes=allowed("agents.execute"),
        description="Run an agent; with wait (default) the finished run if it ends in time.",
    )
    decide_approval = strawberry.mutation(
        resolver=resolve_decide_approval,
        permission_classes=allowed("executions.decide_approval"),
        description="Decide on the calls a paused run waits on: `decisions` (one per pending "
        "call: approve, reject or edit, bound to its args_hash), or `decision` for a lone call; "
        "the run resumes.",
    )
    cancel_execution = strawberry.mutation(
        resolver=resolve_cancel_execution,
        permission_classes=allowed("executions.cancel"),
        description="Stop a queued or running execution.",
    )


@strawberry.type
class Subscription:
    execution_events = strawberry.subscription(
        resolver=resolve_execution_events,
        permission_classes=allowed("executions.events"),
        description="Every event of a run in order (stored ones after `after`, then live).",
    )
