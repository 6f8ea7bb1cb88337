"""Start, read, list, cancel and decide on executions; shared by REST and GraphQL. Every
function takes the process's execution runtime (`Runs`), which holds its `Services`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pasar_core.accounts.principal import Principal
from pasar_core.agents.service import owned_agent, parse_agent_id
from pasar_core.audit import record as audit
from pasar_core.audit.record import Action, Actor
from pasar_core.errors import ApprovalExpired, BadRequest, Conflict, NotFound, ServiceUnavailable
from pasar_core.executions import approval_decisions as decisions
from pasar_core.executions import reads, store
from pasar_core.executions.decisions import (
    AWAITING_APPROVAL,
    ApprovalDecision,
    CallDecision,
    pending_of,
)
from pasar_core.executions.events import STEP_TYPES, TERMINAL_STATUSES, stored_events
from pasar_core.executions.requests import ExecuteRequest
from pasar_core.executions.runtime import Executor, InlineExecutor, Runs
from pasar_core.executions.status import PAUSED as PAUSED_STATUSES
from pasar_core.executions.status import ExecutionStatus
from pasar_core.executions.webhooks import check_webhook_url
from pasar_core.services import Services
from pasar_core.storage.models import Agent, Execution
from pasar_core.storage.reads import Reads
from pasar_core.tool_access import registry_for

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger("pasar.executions")

MAX_PAGE = 100
PAUSED = frozenset(status.value for status in PAUSED_STATUSES)
CANCEL_WAIT_S = 5
S = ExecutionStatus


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
    agent_version: int | None = None
    schedule_id: uuid.UUID | None = None
    """The schedule that fired the run (None: a caller started it)."""
    auth_url: str | None = None
    pending_approval: dict[str, Any] | None = None
    """The first of `pending_approvals` (one call per pause, before several were decided)."""
    pending_approvals: list[dict[str, Any]] | None = None
    approval_expires_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


def parse_execution_id(raw: str | uuid.UUID) -> uuid.UUID:
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"no execution with id {str(raw)[:100]!r}") from None


_VIEW_COLUMNS = (
    "id", "agent_id", "status", "input", "output", "error", "steps", "duration_ms", "cached",
    "executor", "thread_id", "attempts", "created_at", "started_at", "finished_at",
    "agent_version", "schedule_id",
)  # fmt: skip


def _needs_events(status: str, steps: list[Any], cached: bool) -> bool:
    """A finished run keeps its steps on its row; any other has them only as events."""
    return status not in TERMINAL_STATUSES or (not steps and not cached)


def _view_of(values: Mapping[str, Any], events: list[Mapping[str, Any]] | None) -> ExecutionView:
    """A view from an execution's columns and, when its row lacks them, its events in order."""
    steps = list(values["steps"] or [])
    auth_url = expires_at = None
    pending: list[dict[str, Any]] | None = None
    if _needs_events(values["status"], steps, values["cached"]):
        events = events or []
        steps = [event["data"] for event in events if event["type"] in STEP_TYPES]
        statuses = [event["data"] for event in events if event["type"] == "status"]
        last_status = statuses[-1] if statuses else {}
        if values["status"] == "awaiting_authorization":
            auth_url = last_status.get("auth_url")
        if values["status"] == AWAITING_APPROVAL:
            pending = pending_of(last_status)
            expires_at = last_status.get("expires_at")
    fields = {name: values[name] for name in _VIEW_COLUMNS}
    return ExecutionView(
        **fields | {"steps": steps}, auth_url=auth_url,
        pending_approval=pending[0] if pending else None, pending_approvals=pending,
        approval_expires_at=datetime.fromisoformat(expires_at) if expires_at else None,
    )  # fmt: skip


async def _view(services: Services, execution: Execution) -> ExecutionView:
    values = {name: getattr(execution, name) for name in _VIEW_COLUMNS}
    events: list[Mapping[str, Any]] | None = None
    if _needs_events(execution.status, list(execution.steps or []), execution.cached):
        stored = await stored_events(services.sessionmaker, execution.id, 0)
        events = [{"type": event.type, "data": event.data} for event in stored]
    return _view_of(values, events)


def _reads(services: Services) -> Reads:
    if services.reads is None:
        raise RuntimeError("no read pool: Services are built by pasar.lifecycle")
    return services.reads


def input_hash(agent: Agent, request: ExecuteRequest, runner: uuid.UUID) -> str:
    """What a cached result is found by. The runner is part of it: a shared agent's members
    never receive each other's results (their runs use their own grants and threads)."""
    material = {
        "runner": str(runner),
        "input": request.input,
        "config": agent.config,
        "tools": agent.tool_ids,
        "thread": request.parameters.thread_id,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


async def _cached_output(services: Services, agent: Agent, digest: str) -> dict[str, Any] | None:
    ttl = agent.config.get("cache_ttl_s")
    cache = services.result_cache
    if not ttl or cache is None:
        return None
    try:
        return await cache.lookup(agent.id, digest, int(ttl), agent.updated_at)
    except Exception as error:  # Redis down: say so, and create nothing
        log.warning("result cache lookup failed: %s", type(error).__name__)
        raise ServiceUnavailable(
            f"the result cache is unreachable ({type(error).__name__}); try again shortly"
        ) from None


@dataclass(frozen=True, slots=True)
class Queued:
    """An execution just created (`cached`: answered from the result cache, nothing to run)."""

    id: uuid.UUID
    lease: uuid.UUID | None
    cached: bool


@dataclass(frozen=True, slots=True)
class Fired:
    """What marks a run a schedule fired: the schedule, and the tick it fired for."""

    schedule_id: uuid.UUID
    scheduled_for: datetime


async def queue_execution(
    session: AsyncSession,
    runs: Runs,
    principal: Principal,
    agent: Agent,
    request: ExecuteRequest,
    executor: Executor,
    *,
    fired: Fired | None = None,
    actor: Actor | None = None,
) -> Queued:
    """Insert the execution row of `request` on `agent` (checked by the caller) in the
    caller's transaction, with its audit row. A scheduled run never comes from the cache."""
    services = runs.services
    params = request.parameters
    if params.thread_id and agent.config.get("memory") not in ("thread", "summary"):
        raise BadRequest("thread_id needs an agent whose config.memory is 'thread' or 'summary'")
    digest = input_hash(agent, request, principal.user_id)
    # A thread's answer depends on its history, not only its input: never from the cache.
    fresh = params.thread_id or fired is not None
    cached = None if fresh else await _cached_output(services, agent, digest)
    lease = uuid.uuid4() if isinstance(executor, InlineExecutor) and cached is None else None
    values: dict[str, Any] = {
        "agent_id": agent.id, "user_id": principal.user_id, "input": request.input,
        "organisation_id": agent.organisation_id,
        "parameters": params.model_dump(mode="json", exclude_none=True),
        "output": cached, "cached": cached is not None, "executor": executor.name,
        "thread_id": params.thread_id, "webhook_url": params.webhook_url,
        "input_hash": digest, "agent_version": agent.version,
    }  # fmt: skip
    if fired is not None:
        values |= {"schedule_id": fired.schedule_id, "scheduled_for": fired.scheduled_for}
    event: dict[str, Any]
    if cached is None:
        status, event = S.QUEUED, {"status": S.QUEUED.value}
    else:
        status = S.SUCCEEDED
        event = {"status": S.SUCCEEDED.value, "output": cached, "cached": True}
    execution_id = await store.create(
        session, values, status=status, event=event, lease=lease,
        owner=runs.owner if lease else None,
    )  # fmt: skip
    details = {"agent_id": str(agent.id), "executor": executor.name, "cached": cached is not None}
    if fired is not None:
        details["schedule_id"] = str(fired.schedule_id)
    await audit.record(session, Action.EXECUTION_STARTED, actor or Actor.of(principal),
                       target=("execution", execution_id), details=details)  # fmt: skip
    return Queued(execution_id, lease, cached is not None)


async def start_execution(
    runs: Runs,
    principal: Principal,
    agent_id: str,
    request: ExecuteRequest,
    *,
    hold: Callable[[AsyncSession, uuid.UUID], Awaitable[None]] | None = None,
) -> ExecutionView:
    """`hold`: called in the transaction that creates the run (an Idempotency-Key's claim,
    kept from then on whatever happens to this request)."""
    services = runs.services
    executor = runs.executor(request.parameters.executor)
    # A draining server runs nothing more itself; the queue's workers still take rq runs, so
    # a rolling restart refuses none of those.
    if runs.draining and executor.name == "inline":
        raise ServiceUnavailable("this server is shutting down; send the run to another")
    params = request.parameters
    if params.webhook_url:
        check_webhook_url(params.webhook_url, runs.webhook_allow)
    async with services.sessionmaker.begin() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.execute"
        )
        queued = await queue_execution(session, runs, principal, agent, request, executor)
        if hold is not None:
            await hold(session, queued.id)
    if params.webhook_url:
        runs.deliver_webhooks(queued.id, principal.user_id, params.webhook_url)
    if not queued.cached:
        await submit_run(runs, executor, queued.id, queued.lease)
        if params.wait:
            await wait_until_finished(runs, queued.id, params.timeout_s)
    return await get_execution(runs, principal, queued.id)


async def submit_run(
    runs: Runs, executor: Executor, execution_id: uuid.UUID, lease: uuid.UUID | None = None
) -> None:
    """Hand the run to its executor; if that fails (Redis down), fail the run and say so."""
    try:
        if isinstance(executor, InlineExecutor):
            await executor.submit(execution_id, lease)
        else:
            await executor.submit(execution_id)
    except Exception as error:
        log.error("could not queue execution %s: %s", execution_id, type(error).__name__)
        reason = f"the {executor.name} executor could not take the run ({type(error).__name__})"
        await store.transition(
            runs.engine, execution_id, S.FAILED, only_from={S.QUEUED},
            event=store.end_event(S.FAILED, error=reason), values={"error": reason},
        )  # fmt: skip
        raise ServiceUnavailable(reason, details={"execution_id": str(execution_id)}) from None


async def wait_until_finished(
    runs: Runs, execution_id: uuid.UUID, timeout_s: float, after: int = 0
) -> None:
    """Until the run ends or pauses (events after `after`), at most `timeout_s` (or until the
    server starts draining)."""
    try:
        async with asyncio.timeout(timeout_s):
            async for event in runs.hub.subscribe(execution_id, after):
                if event.is_terminal or event.data.get("status") in PAUSED:
                    return
    except TimeoutError:
        return


async def _owned_execution(
    services: Services, principal: Principal, execution_id: uuid.UUID
) -> Execution:
    async with services.sessionmaker() as session:
        execution = await session.get(Execution, execution_id)
    if (
        execution is None
        or execution.user_id != principal.user_id
        or execution.organisation_id != principal.organisation_id
    ):
        raise NotFound(f"no execution with id {str(execution_id)!r}")
    return execution


async def get_execution(
    runs: Runs, principal: Principal, execution_id: str | uuid.UUID
) -> ExecutionView:
    parsed = parse_execution_id(execution_id)
    row = await _reads(runs.services).fetch_row(
        reads.READ_EXECUTION, execution_id=parsed, user_id=principal.user_id,
        organisation_id=principal.organisation_id,
    )  # fmt: skip
    if row is None:  # another user's execution is reported exactly like a missing one
        raise NotFound(f"no execution with id {str(parsed)!r}")
    return _view_of(row, row["events"])


async def list_executions(
    runs: Runs,
    principal: Principal,
    agent_id: str,
    *,
    first: int = 20,
    after: str | None = None,
) -> tuple[list[ExecutionView], str | None]:
    """Newest first; `after` is the opaque cursor returned with the previous page. One
    statement: the agent's owner, the page and the events its unfinished runs need."""
    first = max(1, min(first, MAX_PAGE))
    parsed = parse_agent_id(agent_id)
    values: dict[str, Any] = {
        "agent_id": parsed, "user_id": principal.user_id,
        "organisation_id": principal.organisation_id,
    }  # fmt: skip
    values["limit"] = first + 1
    read = reads.READ_FIRST_PAGE
    if after:
        values["after_created_at"], values["after_id"] = decode_cursor(after)
        read = reads.READ_PAGE_AFTER
    found = reads.executions_of(await _reads(runs.services).fetch_rows(read, **values))
    if found is None:
        raise NotFound(f"no agent with id {str(parsed)!r}")
    page = found[:first]
    cursor = encode_cursor(page[-1]["created_at"], page[-1]["id"]) if len(found) > first else None
    return [_view_of(row, row["events"]) for row in page], cursor


def encode_cursor(created_at: datetime, execution_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{execution_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, last_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(last_id)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(
            "the cursor is not valid; use the one returned with the previous page"
        ) from None


CANCELLED_ON_REQUEST = "cancelled on request"


async def cancel_execution(
    runs: Runs, principal: Principal, execution_id: str | uuid.UUID
) -> ExecutionView:
    """Stop the run wherever it is: a queued or paused run ends at once, a running one is
    stopped by its runner (or here, when its runner stopped beating); a finished run is
    returned unchanged."""
    services = runs.services
    execution = await _owned_execution(services, principal, parse_execution_id(execution_id))
    if S(execution.status).terminal:
        return await _view(services, execution)
    event = store.end_event(S.CANCELLED, error=CANCELLED_ON_REQUEST)
    values = {"error": CANCELLED_ON_REQUEST}
    ended = await store.transition(
        runs.engine, execution.id, S.CANCELLED, only_from={S.QUEUED, *PAUSED_STATUSES},
        event=event, values=values,
    )  # fmt: skip
    # A run that is (or may just have started) running hears it and ends itself.
    await store.request_cancel(runs.engine, execution.id)
    if ended is None:
        cutoff = datetime.now(UTC) - timedelta(seconds=services.settings.stale_after_s)
        await store.transition(
            runs.engine, execution.id, S.CANCELLED, only_from={S.RUNNING}, event=event,
            values=values, when=lambda row: row.heartbeat_at is None or row.heartbeat_at < cutoff,
        )  # fmt: skip
        await wait_until_finished(runs, execution.id, CANCEL_WAIT_S)
    return await get_execution(runs, principal, execution.id)


async def decide_approval(
    runs: Runs,
    principal: Principal,
    execution_id: str | uuid.UUID,
    decision: ApprovalDecision,
    *,
    wait_s: float = 30,
) -> ExecutionView:
    """Decide on the calls a paused run waits on (`executions.approval_decisions` checks the
    request against the pause), and resume the run (in this process for an inline run,
    whichever process paused it)."""
    services = runs.services
    parsed = parse_execution_id(execution_id)
    for _ in range(DECIDE_ATTEMPTS):
        execution = await _owned_execution(services, principal, parsed)
        events = await stored_events(services.sessionmaker, execution.id, 0)
        state = decisions.pause_state(events)
        expires = execution.approval_expires_at
        expired = (execution.error or "").startswith(decisions.EXPIRED.partition(":")[0]) or (
            expires is not None and expires <= datetime.now(UTC)
        )
        try:
            chosen = decisions.check_decisions(decision, state, execution.status, expired)
        except ApprovalExpired:
            await decisions.expire(runs.engine, execution.id)
            raise
        record = await store.load(runs.engine, execution.id)
        if record is None:
            raise NotFound(f"no execution with id {str(parsed)!r}")
        registry = await registry_for(
            services, record.agent_owner_id or record.user_id, record.agent_tool_ids,
            record.organisation_id,
        )  # fmt: skip
        decisions.check_edits(registry, chosen, state)
        queued = await _queue_decided(runs, principal, execution, chosen, state)
        if queued is not None:
            await wait_until_finished(runs, execution.id, wait_s, after=queued.last_seq)
            return await get_execution(runs, principal, execution.id)
    raise Conflict("the execution changed while the decision was made; read it and decide again")


DECIDE_ATTEMPTS = 3


async def _queue_decided(
    runs: Runs,
    principal: Principal,
    execution: Execution,
    chosen: list[CallDecision],
    state: decisions.PauseState,
) -> store.Transitioned | None:
    """Record the decisions and queue the run, unless anything was written since it was read."""
    executor = runs.executor(execution.executor)
    lease = uuid.uuid4() if isinstance(executor, InlineExecutor) else None
    tools = {str(call["tool_call_id"]): call.get("tool") for call in state.pending}
    read_seq = execution.last_seq
    queued = await store.transition(
        runs.engine, execution.id, S.QUEUED, only_from={S.AWAITING_APPROVAL},
        before=[("approval", decisions.approval_event(chosen, state))],
        event={"status": S.QUEUED.value},
        values={"lease": lease, "owner": runs.owner if lease else None,
                "heartbeat_at": datetime.now(UTC), "approval_expires_at": None},
        when=lambda row: row.last_seq == read_seq,
        audit=[audit.audit_row(
            Action.APPROVAL_REJECTED if item.decision == "reject" else Action.APPROVAL_APPROVED,
            Actor.of(principal), target=("execution", execution.id),
            details={"tool": tools.get(item.tool_call_id), "tool_call_id": item.tool_call_id}
            | ({"edited": True} if item.decision == "edit" else {}),
        ) for item in chosen],
    )  # fmt: skip
    if queued is not None:
        await submit_run(runs, executor, execution.id, lease)
    return queued
