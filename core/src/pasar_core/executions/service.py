"""Start, read, list and cancel executions; shared by REST, GraphQL and the CLI."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.accounts.principal import Principal
from pasar_core.agents.service import owned_agent, parse_agent_id
from pasar_core.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from pasar_core.executions.decisions import AWAITING_APPROVAL, ApprovalDecision
from pasar_core.executions.events import (
    STEP_TYPES,
    TERMINAL_STATUSES,
    publish,
    request_cancel,
    stored_events,
)
from pasar_core.executions.executors import Executor, end_execution
from pasar_core.executions.manager import ExecutionRuntime
from pasar_core.executions.requests import ExecuteRequest
from pasar_core.executions.webhooks import check_webhook_url
from pasar_core.services import Services
from pasar_core.storage.models import Agent, Execution, ExecutionEvent

log = logging.getLogger("pasar.executions")

MAX_PAGE = 100
PAUSED = frozenset({"awaiting_authorization", AWAITING_APPROVAL})


@dataclass(frozen=True, slots=True)
class ExecutionView:
    id: uuid.UUID
    agent_id: uuid.UUID
    status: str
    input: Any
    output: dict[str, Any] | None
    error: str | None
    steps: list[dict[str, Any]]
    duration_ms: int | None
    cached: bool
    executor: str
    thread_id: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    auth_url: str | None = None
    pending_approval: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


async def next_seq(session: AsyncSession, execution_id: uuid.UUID) -> int:
    current = await session.scalar(
        select(func.coalesce(func.max(ExecutionEvent.seq), 0)).where(
            ExecutionEvent.execution_id == execution_id
        )
    )
    return int(current or 0) + 1


def parse_execution_id(raw: str | uuid.UUID) -> uuid.UUID:
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"no execution with id {str(raw)[:100]!r}") from None


def runtime_of(services: Services) -> ExecutionRuntime:
    runtime = services.executions
    if runtime is None:
        raise RuntimeError("this process has no execution runtime")
    return runtime


async def _view(services: Services, execution: Execution) -> ExecutionView:
    steps = list(execution.steps or [])
    auth_url = pending = None
    if execution.status not in TERMINAL_STATUSES or (not steps and not execution.cached):
        events = await stored_events(services.sessionmaker, execution.id, 0)
        steps = [event.data for event in events if event.type in STEP_TYPES]
        statuses = [event.data for event in events if event.type == "status"]
        last_status = statuses[-1] if statuses else {}
        if execution.status == "awaiting_authorization":
            auth_url = last_status.get("auth_url")
        if execution.status == AWAITING_APPROVAL:
            pending = last_status.get("pending")
    return ExecutionView(
        id=execution.id,
        agent_id=execution.agent_id,
        status=execution.status,
        input=execution.input,
        output=execution.output,
        error=execution.error,
        steps=steps,
        duration_ms=execution.duration_ms,
        cached=execution.cached,
        executor=execution.executor,
        thread_id=execution.thread_id,
        attempts=execution.attempts,
        created_at=execution.created_at,
        started_at=execution.started_at,
        finished_at=execution.finished_at,
        auth_url=auth_url,
        pending_approval=pending,
    )


def input_hash(agent: Agent, request: ExecuteRequest) -> str:
    material = {
        "input": request.input,
        "config": agent.config,
        "tools": agent.tool_ids,
        "thread": request.parameters.thread_id,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


async def _cached_output(services: Services, agent: Agent, digest: str) -> dict[str, Any] | None:
    ttl = agent.config.get("cache_ttl_s")
    if not ttl:
        return None
    cache = services.result_cache
    if cache is None:
        return None
    return await cache.lookup(agent.id, digest, int(ttl), agent.updated_at)


async def start_execution(
    services: Services, principal: Principal, agent_id: str, request: ExecuteRequest
) -> ExecutionView:
    runtime = runtime_of(services)
    executor = runtime.executor(request.parameters.executor)
    params = request.parameters
    if params.webhook_url:
        check_webhook_url(params.webhook_url, runtime.webhook_allow)
    async with services.sessionmaker.begin() as session:
        agent = await owned_agent(session, principal, parse_agent_id(agent_id))
        if params.thread_id and agent.config.get("memory") != "thread":
            raise BadRequest("thread_id needs an agent whose config.memory is 'thread'")
        digest = input_hash(agent, request)
        cached = await _cached_output(services, agent, digest)
        execution = Execution(
            agent_id=agent.id,
            user_id=principal.user_id,
            input=request.input,
            parameters=params.model_dump(mode="json", exclude_none=True),
            status="succeeded" if cached is not None else "queued",
            output=cached,
            cached=cached is not None,
            executor=executor.name,
            thread_id=params.thread_id,
            webhook_url=params.webhook_url,
            input_hash=digest,
            heartbeat_at=datetime.now(UTC),
            steps=[],
            duration_ms=0 if cached is not None else None,
            finished_at=datetime.now(UTC) if cached is not None else None,
        )
        session.add(execution)
        await session.flush()
        status = {"status": execution.status} | (
            {"output": cached, "cached": True} if cached else {}
        )
        await publish(session, execution.id, 1, "status", status)
        execution_id = execution.id
    if params.webhook_url:
        runtime.deliver_webhooks(execution_id, principal.user_id, params.webhook_url)
    if cached is None:
        await submit_run(services, executor, execution_id)
        if params.wait:
            await wait_until_finished(runtime, execution_id, params.timeout_s)
    return await get_execution(services, principal, execution_id)


async def submit_run(services: Services, executor: Executor, execution_id: uuid.UUID) -> None:
    """Hand the run to its executor; if that fails (Redis down), fail the run and say so."""
    try:
        await executor.submit(execution_id)
    except Exception as error:
        log.error("could not queue execution %s: %s", execution_id, type(error).__name__)
        reason = f"the {executor.name} executor could not take the run ({type(error).__name__})"
        await end_execution(services, execution_id, "failed", reason)
        raise ServiceUnavailable(reason, details={"execution_id": str(execution_id)}) from None


async def wait_until_finished(
    runtime: ExecutionRuntime, execution_id: uuid.UUID, timeout_s: float, after: int = 0
) -> None:
    """Until the run ends or pauses (events after `after`), at most `timeout_s`."""
    try:
        async with asyncio.timeout(timeout_s):
            async for event in runtime.hub.subscribe(execution_id, after):
                if event.is_terminal or event.data.get("status") in PAUSED:
                    return
    except TimeoutError:
        return


async def _owned_execution(
    services: Services, principal: Principal, execution_id: uuid.UUID
) -> Execution:
    async with services.sessionmaker() as session:
        execution = await session.get(Execution, execution_id)
    if execution is None or execution.user_id != principal.user_id:
        raise NotFound(f"no execution with id {str(execution_id)!r}")
    return execution


async def get_execution(
    services: Services, principal: Principal, execution_id: str | uuid.UUID
) -> ExecutionView:
    execution = await _owned_execution(services, principal, parse_execution_id(execution_id))
    return await _view(services, execution)


async def list_executions(
    services: Services,
    principal: Principal,
    agent_id: str,
    *,
    first: int = 20,
    after: str | None = None,
) -> tuple[list[ExecutionView], str | None]:
    """Newest first; `after` is the opaque cursor returned with the previous page."""
    first = max(1, min(first, MAX_PAGE))
    async with services.sessionmaker() as session:
        agent = await owned_agent(session, principal, parse_agent_id(agent_id))
        query = select(Execution).where(Execution.agent_id == agent.id)
        if after:
            created_at, last_id = decode_cursor(after)
            query = query.where(
                (Execution.created_at < created_at)
                | ((Execution.created_at == created_at) & (Execution.id < last_id))
            )
        rows = list(
            await session.scalars(
                query.order_by(Execution.created_at.desc(), Execution.id.desc()).limit(first + 1)
            )
        )
    page = rows[:first]
    cursor = encode_cursor(page[-1]) if len(rows) > first else None
    return [await _view(services, row) for row in page], cursor


def encode_cursor(execution: Execution) -> str:
    raw = f"{execution.created_at.isoformat()}|{execution.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, last_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(last_id)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(
            "the cursor is not valid; use the one returned with the previous page"
        ) from None


async def cancel_execution(
    services: Services, principal: Principal, execution_id: str | uuid.UUID
) -> ExecutionView:
    """Ask the run to stop wherever it runs; a finished run is returned unchanged."""
    execution = await _owned_execution(services, principal, parse_execution_id(execution_id))
    if execution.status not in TERMINAL_STATUSES:
        async with services.sessionmaker.begin() as session:
            await session.execute(
                update(Execution).where(Execution.id == execution.id).values(cancel_requested=True)
            )
            await request_cancel(session, execution.id)
        runtime = runtime_of(services)
        if execution.status == "queued":
            await _cancel_queued(services, execution.id)
        await wait_until_finished(runtime, execution.id, 5)
    return await get_execution(services, principal, execution.id)


async def _cancel_queued(services: Services, execution_id: uuid.UUID) -> None:
    """A run that has not started yet is cancelled here; the runner then refuses to start it."""
    await end_execution(
        services,
        execution_id,
        "cancelled",
        "cancelled on request",
        from_statuses=frozenset({"queued"}),
    )


async def decide_approval(
    services: Services,
    principal: Principal,
    execution_id: str | uuid.UUID,
    decision: ApprovalDecision,
    *,
    wait_s: float = 30,
) -> ExecutionView:
    """Approve or reject the call a paused run waits on, and resume the run."""
    execution = await _owned_execution(services, principal, parse_execution_id(execution_id))
    async with services.sessionmaker.begin() as session:
        row = await session.get(Execution, execution.id, with_for_update=True)
        if row is None or row.status != AWAITING_APPROVAL:
            raise Conflict("the execution is not waiting for an approval")
        view = await _view(services, row)
        row.status = "queued"
        data = {"decision": decision.decision, "note": decision.note,
                "pending": view.pending_approval}  # fmt: skip
        seq = await next_seq(session, row.id)
        await publish(session, row.id, seq, "approval", data)
        executor_name = row.executor
    runtime = runtime_of(services)
    await submit_run(services, runtime.executor(executor_name), execution.id)
    await wait_until_finished(runtime, execution.id, wait_s, after=seq)
    return await get_execution(services, principal, execution.id)
