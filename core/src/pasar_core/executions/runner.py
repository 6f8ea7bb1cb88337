"""Run one execution: claim it, prepare its context, stream its agent, record every step through
its `RunLog`, and end it in exactly one final status (or pause it, or hand it back).

The same code runs in a server (the inline executor) and in a `pasar worker` (rq). A run is
resumable at every point: what its log made durable is replayed (`executions.resume`), and a
tool call whose effect is not a read waits for its `tool_call` step to be durable before it
runs, so a process that dies mid-call never makes a resumed run repeat it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from langchain.agents.middleware.model_call_limit import ModelCallLimitExceededError
from langchain.agents.middleware.tool_call_limit import ToolCallLimitExceededError
from langchain_core.messages import AIMessageChunk, BaseMessage, ToolMessage
from sqlalchemy.ext.asyncio import AsyncEngine

from pasar_core.agents.builder import (
    RUN_HOOKS,
    ModelOutcome,
    RunHooks,
    build_agent,
    run_tool_call,
)
from pasar_core.agents.model_config import strategy_for
from pasar_core.errors import (
    ConnectionNotAttached,
    OAuthNotConfigured,
    PasarError,
    ToolNotFound,
)
from pasar_core.executions import store
from pasar_core.executions.approval import (
    CURRENT_TOOL_CALL,
    ApprovalGate,
    ApprovalRequired,
    PendingCall,
    gated_tools,
)
from pasar_core.executions.authorization import missing_authorization, pause_event
from pasar_core.executions.context import RunContext, user_message
from pasar_core.executions.events import STEP_TYPES, stored_events
from pasar_core.executions.resume import (
    INTERRUPTED,
    NOT_RUN,
    REJECTED,
    OpenCall,
    Replay,
    replay,
    tool_message_content,
)
from pasar_core.executions.status import CANCEL_REQUESTED as CANCEL_REQUESTED
from pasar_core.executions.status import HANDOFF as HANDOFF
from pasar_core.executions.status import ExecutionStatus
from pasar_core.executions.store import LeaseLost, RunLog, RunRecord, end_event, end_values
from pasar_core.memory.recall import recall, recall_prompt, remember_exchange
from pasar_core.models.cache import BuiltCache
from pasar_core.observability.context import EXECUTION_ID, bound
from pasar_core.services import Services
from pasar_core.specs import Effect
from pasar_core.storage.availability import is_unavailable
from pasar_core.storage.db import patient_checkouts

log = logging.getLogger("pasar.runner")

S = ExecutionStatus
ERROR_TEXT_LIMIT = 2000
REFUSED = "TOOL_NOT_DECLARED"


class RunnerHost(Protocol):
    """What a runner needs from the process it runs in (`executions.runtime.Runs`)."""

    services: Services
    journal: store.Journal
    owner: str

    @property
    def engine(self) -> AsyncEngine: ...


async def run_execution(
    host: RunnerHost, execution_id: uuid.UUID, lease: uuid.UUID | None = None
) -> str | None:
    """Run to a final status and return it: `queued` when handed back, a paused status when it
    waits, None when it was not this runner's to run (ended, paused, held by a live runner, or
    lost while running)."""
    services = host.services
    with (
        patient_checkouts(services.settings.run_db_wait_s),
        bound(EXECUTION_ID, str(execution_id)),
        services.tracing.span("pasar.run", {"pasar.execution.id": str(execution_id)}) as span,
    ):
        status = await _run_execution(host, execution_id, lease or uuid.uuid4())
        if status is not None:
            services.metrics.runs_finished.labels(status=status).inc()
            if span is not None:
                span.set_attribute("pasar.execution.status", status)
        return status


async def _run_execution(host: RunnerHost, execution_id: uuid.UUID, lease: uuid.UUID) -> str | None:
    record = await claimable(host, execution_id, lease)
    if record is None:
        return None
    run_log = host.journal.open(record, lease, host.owner)
    try:
        if record.kind == "tool_call":  # one tool called directly: no model
            from pasar_core.executions.direct import run_direct

            return await run_direct(host, record, run_log)
        return await _run(host, record, run_log)
    except LeaseLost as lost:
        log.info("execution %s: stopped, %s", execution_id, lost)
        return None
    finally:
        host.journal.forget(run_log)


async def claimable(
    host: RunnerHost, execution_id: uuid.UUID, lease: uuid.UUID
) -> RunRecord | None:
    """The run, if this runner may claim it. A run whose holder stopped beating is taken back
    first (`running -> queued`, counted as an interruption)."""
    from pasar_core.executions.recovery import requeue_lost

    settings = host.services.settings
    record = await store.load(host.engine, execution_id)
    if record is None or record.status.terminal or record.status.paused:
        return None
    cutoff = datetime.now(UTC) - timedelta(seconds=settings.stale_after_s)
    if record.status is S.RUNNING:
        if not record.stale(cutoff):
            return None  # its runner is alive
        await requeue_lost(host.engine, record.id, settings)  # (or another process just did)
        record = await store.load(host.engine, execution_id)
    if record is not None and record.lease not in (None, lease):
        if not record.stale(cutoff):
            return None  # reserved by a live process
        await store.reserve(host.engine, execution_id, lease, host.owner, stale_before=cutoff)
        record = await store.load(host.engine, execution_id)
    if record is None or record.status is not S.QUEUED or record.lease not in (None, lease):
        return None
    if record.cancel_requested:
        await store.transition(
            host.engine, execution_id, S.CANCELLED, only_from={S.QUEUED},
            event=end_event(S.CANCELLED, error="cancelled on request"),
            values={"error": "cancelled on request"},
        )  # fmt: skip
        return None
    return record


class _Run:
    """One attempt at one run: its context, log and hooks."""

    def __init__(self, host: RunnerHost, ctx: RunContext, run_log: RunLog) -> None:
        self.host, self.ctx, self.log = host, ctx, run_log
        self.final_text = ""
        self.started = time.perf_counter()
        self.edits: dict[str, dict[str, Any]] = {}
        """Calls a person edited: their id and the arguments the model asked for."""

    # hooks --------------------------------------------------------------------------------

    def hooks(self) -> RunHooks:
        return RunHooks(
            context_for=self.ctx.tool_context,
            tool_started=self.tool_started,
            tool_finished=self.tool_finished,
            model_finished=self.model_finished,
            tool_refused=self.tool_refused,
            step_recorded=self.step_recorded,
            recorded_steps=lambda: self.log.steps,
            tracing=self.host.services.tracing,
        )

    async def step_recorded(self, type_: str, data: dict[str, Any]) -> None:
        self.log.step(type_, data)

    async def tool_started(self, tool_id: str, args: dict[str, Any]) -> None:
        call_id = CURRENT_TOOL_CALL.get()
        data: dict[str, Any] = {"tool": tool_id, "args": args, "tool_call_id": call_id}
        if call_id in self.edits:
            data |= {"edited": True, "model_args": self.edits[call_id]}
        self.log.step("tool_call", data)
        self.log.audit(self.ctx.tool_call_audit(tool_id, call_id))
        if self.ctx.effect(tool_id) is not Effect.READ:
            await self.log.barrier()  # durable before it acts: a resumed run never repeats it

    async def tool_finished(self, tool_id: str, result: Any, error: str | None, ms: int) -> None:
        data: dict[str, Any] = {"tool": tool_id, "duration_ms": ms,
                                "tool_call_id": CURRENT_TOOL_CALL.get()}  # fmt: skip
        data |= {"error": error} if error else {"result": result}
        self.log.step("tool_result", data)
        self.host.services.metrics.tool_call(tool_id, ok=error is None, seconds=ms / 1000)

    async def tool_refused(self, name: str, args: dict[str, Any], call_id: str | None) -> str:
        error = f"{REFUSED}: the agent does not declare a tool named {name[:200]!r}"
        self.log.step("tool_call", {"tool": None, "name": name, "args": args,
                                    "tool_call_id": call_id, "refused": True})  # fmt: skip
        result = {"tool": None, "name": name, "tool_call_id": call_id, "error": error,
                  "refused": True}  # fmt: skip
        self.log.step("tool_result", result)
        self.host.services.metrics.tool_calls.labels(tool="undeclared", outcome="refused").inc()
        return tool_message_content(result)

    async def model_finished(self, outcome: ModelOutcome) -> None:
        data: dict[str, Any] = {"duration_ms": outcome.duration_ms}
        attempts = outcome.attempts
        if attempts:
            data["model"] = attempts[-1].model if outcome.error is None else None
            failed = [{"model": a.model, "error": a.error} for a in attempts if a.error]
            if failed:
                data["fallback"] = {"failed": failed, "answered": data["model"]}
        if outcome.message is None:
            data["error"] = outcome.error or "the model gave no reply"
            self.log.step("model_call", data)
            return
        message = outcome.message
        self.final_text = _text(message)
        data["content"] = self.final_text
        data["tool_calls"] = [
            {"name": call["name"], "args": call["args"], "id": call.get("id"),
             "tool": self.ctx.names.get(call["name"])}
            for call in message.tool_calls
        ]  # fmt: skip
        self.log.step("model_call", data)

    # ending -------------------------------------------------------------------------------

    def duration_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)

    async def end(
        self,
        status: ExecutionStatus,
        *,
        output: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> str:
        duration = self.duration_ms()
        values = end_values(status, output=output, error=error, duration_ms=duration,
                            steps=self.log.steps)  # fmt: skip
        values.pop("status")
        event = end_event(status, output=output, error=error, duration_ms=duration)
        await self.log.close(status, event, **values)
        return status.value

    async def pause(self, status: ExecutionStatus, event: dict[str, Any]) -> str:
        await self.log.close(status, event)
        return status.value

    async def hand_back(self, reason: str) -> str:
        await self.log.close(S.QUEUED, {"status": S.QUEUED.value, "handed_back": reason})
        return S.QUEUED.value

    # resuming -----------------------------------------------------------------------------

    async def resolve(self, state: Replay) -> list[BaseMessage]:
        """The replayed conversation, with a result for every call its last reply left open."""
        history = list(state.messages)
        calls = state.open_calls()
        open_ids = {call.id for call in calls}
        decided = {key: value for key, value in state.decisions.items() if key in open_ids}
        gated = self.gated()
        internal = strategy_for(self.ctx.registry, self.ctx.config.strategy).internal_tools
        for call in calls:
            tool_id = self.ctx.names.get(call.name)
            decision = decided.get(call.id)
            if tool_id is None and call.name in internal:
                content = self.accept_internal(call)
            elif call.started:
                if tool_id is not None and self.ctx.effect(tool_id) is Effect.READ:
                    content = await self.call(tool_id, call)
                else:
                    content = self.record_result(tool_id, call, INTERRUPTED)
            elif decision is not None:
                if decision.decision in ("approve", "edit") and tool_id is not None:
                    if decision.args is not None:
                        self.edits[call.id] = call.args
                        call = OpenCall(call.id, call.name, decision.args, call.started)
                    content = await self.call(tool_id, call)
                else:
                    content = self.record_result(tool_id, call, REJECTED)
            elif decided:
                content = self.record_result(tool_id, call, NOT_RUN)
            elif tool_id is None:
                content = await self.tool_refused(call.name, call.args, call.id)
            elif tool_id in gated:
                raise ApprovalRequired(PendingCall(tool_id, call.args, call.id))
            else:
                content = await self.call(tool_id, call)
            history.append(ToolMessage(content, tool_call_id=call.id))
        return history

    def gated(self) -> frozenset[str]:
        require_for = list(self.ctx.config.approval.require_for)
        return gated_tools(self.ctx.registry, self.ctx.tool_ids, require_for)

    def pending_calls(self, first: PendingCall) -> list[PendingCall]:
        """Every call of the last model reply that needs approval and never started."""
        steps = self.log.steps
        last = next((s for s in reversed(steps) if s["type"] == "model_call"), None)
        seen = {s.get("tool_call_id") for s in steps if s["type"] in ("tool_call", "tool_result")}
        gated = self.gated()
        pending = [
            PendingCall(call["tool"], dict(call["args"]), str(call["id"]))
            for call in (last or {}).get("tool_calls", [])
            if call.get("id") and call["id"] not in seen and call.get("tool") in gated
        ]
        if all(call.tool_call_id != first.tool_call_id for call in pending):
            pending.insert(0, first)
        return pending

    async def pause_for_approval(self, first: PendingCall) -> str:
        expires = datetime.now(UTC) + timedelta(seconds=self.host.services.settings.approval_ttl_s)
        pending = [call.as_json(self.ctx.execution_id) for call in self.pending_calls(first)]
        event = {"status": S.AWAITING_APPROVAL.value, "pending": pending,
                 "expires_at": expires.isoformat()}  # fmt: skip
        await self.log.close(S.AWAITING_APPROVAL, event, approval_expires_at=expires)
        return S.AWAITING_APPROVAL.value

    async def call(self, tool_id: str, call: OpenCall) -> str:
        token = CURRENT_TOOL_CALL.set(call.id)
        try:
            return await run_tool_call(self.ctx.registry, tool_id, call.args, RUN_HOOKS.get())
        finally:
            CURRENT_TOOL_CALL.reset(token)

    def accept_internal(self, call: OpenCall) -> str:
        """A call of the strategy's own tool left open (it changes only the run's own state,
        so it needs no approval): the model is told it was taken, as its tool would have."""
        data = {"tool": None, "name": call.name, "tool_call_id": call.id, "internal": True}
        if not call.started:
            self.log.step("tool_call", {**data, "args": call.args})
        step = self.log.step("tool_result", {**data, "result": f"{call.name}: accepted"})
        return tool_message_content(step)

    def record_result(self, tool_id: str | None, call: OpenCall, error: str) -> str:
        step = self.log.step("tool_result", {"tool": tool_id, "tool_call_id": call.id,
                                             "error": error})  # fmt: skip
        return tool_message_content(step)


def _text(message: Any) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text", "") if isinstance(part, dict) else str(part) for part in content
    )


def _graph(run: _Run) -> Any:
    """The compiled agent for this config and these tool versions, built once per process."""
    ctx = run.ctx
    services = run.host.services

    def build() -> Any:
        require_for = list(ctx.config.approval.require_for)
        gate = ApprovalGate(ctx.names, gated_tools(ctx.registry, ctx.tool_ids, require_for))
        return build_agent(
            ctx.registry, ctx.config, ctx.tool_ids, services.settings.env, [gate], services.models
        )

    return services.graphs.get(BuiltCache.key(*ctx.graph_key), build)


async def _messages(run: _Run, record: RunRecord) -> list[Any]:
    """Thread history, the user's input, then what earlier attempts recorded, resolved."""
    messages: list[Any] = [*await run.ctx.thread_history()]
    resumed = record.last_seq > 1  # more than its creation: after a pause or a lost process
    earlier = await stored_events(run.host.services.sessionmaker, record.id, 0) if resumed else []
    if run.ctx.config.memory == "vector":
        recalled = await _recalled(run, record, earlier)
        if recalled:
            messages.append({"role": "system", "content": recall_prompt(recalled)})
    messages.append({"role": "user", "content": user_message(record.input)})
    if resumed:
        run.log.steps = [event.data for event in earlier if event.type in STEP_TYPES]
        messages.extend(await run.resolve(replay(earlier)))
    return messages


async def _recalled(run: _Run, record: RunRecord, earlier: list[Any]) -> list[dict[str, Any]]:
    """What this run recalls: searched once, recorded as a `recall` step; a resumed run reads
    its step back, so its prompt stays the one it started with."""
    for event in earlier:
        if event.type == "recall":
            return list(event.data.get("hits", []))
    if record.last_seq > 1:
        return []  # started before vector memory was chosen: nothing was recalled then
    settings = run.ctx.config.knowledge
    started = time.perf_counter()
    query = user_message(record.input)
    hits = await recall(run.host.services, record.agent_id, record.user_id, settings, query)
    run.log.step("recall", {"model": settings.embedding_model, "query": query[:1000],
                            "hits": hits, "duration_ms": int((time.perf_counter() - started) * 1000)})  # fmt: skip
    return hits


async def prepared(host: RunnerHost, record: RunRecord, run_log: RunLog) -> RunContext | str:
    """The run's context; or, when one of its tools is gone (a custom tool taken back,
    unshared or deleted since saving, a sandboxed plugin removed), the run ended `failed`
    with the typed reason and its status returned."""
    try:
        return await RunContext.prepare(host.services, record)
    except ToolNotFound as error:
        values = end_values(S.FAILED, error=f"{error.code}: {error.message}", duration_ms=0,
                            steps=run_log.steps)  # fmt: skip
        values.pop("status")
        event = end_event(S.FAILED, error=f"{error.code}: {error.message}", duration_ms=0)
        await run_log.close(S.FAILED, event, **values)
        return S.FAILED.value


async def _run(host: RunnerHost, record: RunRecord, run_log: RunLog) -> str:
    ctx = await prepared(host, record, run_log)
    if isinstance(ctx, str):
        return ctx
    run = _Run(host, ctx, run_log)
    try:
        needed = await missing_authorization(
            host.services, ctx.registry, user_id=record.user_id, agent_id=record.agent_id,
            tool_ids=ctx.tool_ids, grant_user=record.grant_user,
        )  # fmt: skip
    except (
        OAuthNotConfigured,
        ConnectionNotAttached,
    ) as error:  # pausing would wait for a link nobody can be given
        return await run.end(S.FAILED, error=f"{error.code}: {error.message}")
    if needed is not None:
        return await run.pause(S.AWAITING_AUTHORIZATION, pause_event(needed))
    RUN_HOOKS.set(run.hooks())  # this run's task (and the tasks the graph starts) see these
    try:
        graph = _graph(run)
    except PasarError as error:
        run_log.step("model_call", {"error": error.message})
        return await run.end(S.FAILED, error=error.message)
    config = ctx.config
    try:
        async with asyncio.timeout(config.limits.timeout_s) as deadline:
            messages = await _messages(run, record)
            stream = graph.astream(
                {"messages": messages},
                # Our middleware counts model and tool calls; the graph's limit is a backstop,
                # sized for the extra middleware nodes every model call passes through.
                config={"recursion_limit": config.limits.max_steps * 10 + 50},
                stream_mode=["updates", "messages"],
                subgraphs=True,  # a strategy's inner agents stream their tokens too
            )
            async for _namespace, mode, payload in stream:
                if mode == "messages" and isinstance(payload[0], AIMessageChunk):
                    text_ = payload[0].content
                    if isinstance(text_, str) and text_:
                        run_log.token(text_)
    except ApprovalRequired as paused:
        return await run.pause_for_approval(paused.call)
    except (ModelCallLimitExceededError, ToolCallLimitExceededError) as error:
        return await run.end(S.LIMIT_EXCEEDED, error=str(error))
    except TimeoutError:
        if not deadline.expired():
            raise
        message = f"the run exceeded its {config.limits.timeout_s:g} s time limit"
        return await run.end(S.LIMIT_EXCEEDED, error=message)
    except asyncio.CancelledError as cancelled:
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()  # the cancellation is a message to this run, answered below
        if CANCEL_REQUESTED in cancelled.args:
            return await asyncio.shield(run.end(S.CANCELLED, error="cancelled on request"))
        return await asyncio.shield(run.hand_back("its process stopped"))
    except LeaseLost:
        raise
    except Exception as error:  # a provider outage or a bug: recorded, never a crash
        if is_unavailable(error):
            raise  # nothing can be recorded now; the run is resumed once it can
        log.warning("execution %s failed: %s", record.id, type(error).__name__)
        return await run.end(S.FAILED, error=f"{type(error).__name__}: {error}")
    output = {"message": run.final_text}
    cache = host.services.result_cache
    if cache and config.cache_ttl_s and record.input_hash:  # stored before anyone hears
        try:
            await cache.store(record.agent_id, record.input_hash, output, config.cache_ttl_s)
        except Exception as error:  # an unreachable cache costs a cache entry, not the run
            log.warning("execution %s: result not cached (%s)", record.id, type(error).__name__)
    if config.memory == "vector" and config.knowledge.remember_exchanges:
        await remember_exchange(
            host.services, user_id=record.user_id, agent_id=record.agent_id,
            settings=config.knowledge, execution_id=record.id,
            question=user_message(record.input), answer=run.final_text,
        )  # fmt: skip
    return await run.end(S.SUCCEEDED, output=output)
