"""Run one execution: build the agent, stream it, record every step, end in a final status.

The same function runs in the API process (inline executor) and in an RQ worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from langchain.agents.middleware.model_call_limit import ModelCallLimitExceededError
from langchain.agents.middleware.tool_call_limit import ToolCallLimitExceededError
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from sqlalchemy import func, select, update

from pasar_core.agents.builder import RUN_HOOKS, RunHooks, build_agent, run_tool_call
from pasar_core.agents.config import AgentConfig
from pasar_core.agents.secrets import load_secrets
from pasar_core.errors import OAuthNotConfigured, PasarError, ReauthorizationRequired
from pasar_core.executions.approval import (
    AWAITING_APPROVAL,
    CURRENT_TOOL_CALL,
    ApprovalGate,
    ApprovalRequired,
    PendingCall,
    gated_tools,
    replay,
    tool_message_content,
    unanswered_calls,
)
from pasar_core.executions.authorization import AWAITING, missing_authorization, pause_event
from pasar_core.executions.events import STEP_TYPES, TERMINAL_STATUSES, publish, stored_events
from pasar_core.models.cache import BuiltCache
from pasar_core.net.guard import ALLOW_BOUND_EXTRA, ALLOW_SOCKETS_EXTRA
from pasar_core.oauth.enforcement import credentials_for_tool
from pasar_core.registry import Registry
from pasar_core.services import Services
from pasar_core.specs import ToolContext
from pasar_core.storage.models import Agent, Execution, ExecutionEvent
from pasar_core.tool_access import registry_for

log = logging.getLogger("pasar.runner")

THREAD_HISTORY_TURNS = 20
SHUTDOWN = "pasar-shutdown"  # the cancel message executors use when the process stops
ERROR_TEXT_LIMIT = 2000
TOKEN_FLUSH_S = 0.05


class Recorder:
    """Publishes an execution's events in order and keeps its steps.

    Model tokens are batched: one live-only notification per `TOKEN_FLUSH_S` (and before every
    stored event), not one database round trip per token."""

    def __init__(self, services: Services, execution_id: uuid.UUID, next_seq: int) -> None:
        self._services = services
        self.execution_id = execution_id
        self._next_seq = next_seq
        self.steps: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()
        self._tokens: list[str] = []
        self._flushed_at = time.monotonic()

    async def token(self, text: str) -> None:
        self._tokens.append(text)
        if time.monotonic() - self._flushed_at >= TOKEN_FLUSH_S:
            await self.flush_tokens()

    async def flush_tokens(self) -> None:
        if not self._tokens:
            return
        text, self._tokens = "".join(self._tokens), []
        self._flushed_at = time.monotonic()
        async with self._lock, self._services.sessionmaker.begin() as session:
            await publish(session, self.execution_id, None, "token", {"text": text})

    async def event(self, type_: str, data: dict[str, Any]) -> None:
        await self.flush_tokens()
        async with self._lock, self._services.sessionmaker.begin() as session:
            await publish(session, self.execution_id, self._next_seq, type_, data)
            self._next_seq += 1

    async def finish(self, session: Any, data: dict[str, Any]) -> None:
        """The final status event, inside the caller's transaction."""
        await publish(session, self.execution_id, self._next_seq, "status", data)
        self._next_seq += 1

    async def step(self, type_: str, data: dict[str, Any]) -> None:
        step = {"type": type_, "at": datetime.now(UTC).isoformat(), **data}
        self.steps.append(step)
        await self.event(type_, step)


def _user_message(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text", "") if isinstance(part, dict) else str(part) for part in content
    )


async def _thread_history(services: Services, execution: Execution) -> list[dict[str, str]]:
    if not execution.thread_id:
        return []
    async with services.sessionmaker() as session:
        previous = await session.scalars(
            select(Execution)
            .where(
                Execution.agent_id == execution.agent_id,
                Execution.thread_id == execution.thread_id,
                Execution.status == "succeeded",
                Execution.created_at < execution.created_at,
            )
            .order_by(Execution.created_at.desc())
            .limit(THREAD_HISTORY_TURNS)
        )
        turns = list(previous)[::-1]
    history: list[dict[str, str]] = []
    for turn in turns:
        history.append({"role": "user", "content": _user_message(turn.input)})
        history.append(
            {"role": "assistant", "content": str((turn.output or {}).get("message", ""))}
        )
    return history


async def _start(
    services: Services, execution_id: uuid.UUID
) -> tuple[Execution, Agent, int] | None:
    """Claim the execution (queued -> running); None when it must not run."""
    async with services.sessionmaker.begin() as session:
        execution = await session.get(Execution, execution_id, with_for_update=True)
        if execution is None or execution.status in TERMINAL_STATUSES:
            return None
        agent = await session.get(Agent, execution.agent_id)
        if agent is None:
            return None
        next_seq = (
            await session.scalar(
                select(func.coalesce(func.max(ExecutionEvent.seq), 0)).where(
                    ExecutionEvent.execution_id == execution_id
                )
            )
            or 0
        ) + 1
        if execution.cancel_requested:
            execution.status = "cancelled"
            execution.finished_at = datetime.now(UTC)
            await publish(session, execution_id, next_seq, "status", {"status": "cancelled"})
            return None
        execution.status = "running"
        execution.attempts += 1
        execution.started_at = execution.started_at or datetime.now(UTC)
        execution.heartbeat_at = datetime.now(UTC)
        await publish(
            session, execution_id, next_seq, "status",
            {"status": "running", "attempt": execution.attempts},
        )  # fmt: skip
        return execution, agent, next_seq + 1


async def _finish(
    services: Services,
    recorder: Recorder,
    status: str,
    *,
    output: dict[str, Any] | None = None,
    error: str | None = None,
    started: float,
) -> None:
    duration_ms = int((time.perf_counter() - started) * 1000)
    async with services.sessionmaker.begin() as session:
        await session.execute(
            update(Execution)
            .where(Execution.id == recorder.execution_id)
            .values(
                status=status,
                output=output,
                error=error[:ERROR_TEXT_LIMIT] if error else None,
                duration_ms=duration_ms,
                finished_at=datetime.now(UTC),
                steps=recorder.steps,
            )
        )
        data: dict[str, Any] = {"status": status, "duration_ms": duration_ms}
        if output is not None:
            data["output"] = output
        if error:
            data["error"] = error[:ERROR_TEXT_LIMIT]
        await recorder.finish(session, data)


async def _pause(services: Services, recorder: Recorder, needed: ReauthorizationRequired) -> None:
    async with services.sessionmaker.begin() as session:
        await session.execute(
            update(Execution).where(Execution.id == recorder.execution_id).values(status=AWAITING)
        )
        await recorder.finish(session, pause_event(needed))


def _graph(
    services: Services,
    registry: Registry,
    config: AgentConfig,
    tool_ids: list[str],
    names: dict[str, str],
) -> Any:
    """The compiled agent for this config and these tools, built once per process (tool ids
    name one spec each in every registry `registry_for` returns)."""

    def build() -> Any:
        require_for = list(config.approval.require_for)
        gate = ApprovalGate(names, gated_tools(registry, tool_ids, require_for))
        return build_agent(
            registry, config, tool_ids, services.settings.env, [gate], services.models
        )

    # The fingerprint tells custom tool versions apart: an update never reuses an old graph.
    key = BuiltCache.key(config.model_dump(mode="json"), tool_ids, registry.fingerprint(tool_ids))
    return services.graphs.get(key, build)


async def _pause_for_approval(services: Services, recorder: Recorder, call: PendingCall) -> None:
    async with services.sessionmaker.begin() as session:
        await session.execute(
            update(Execution)
            .where(Execution.id == recorder.execution_id)
            .values(status=AWAITING_APPROVAL)
        )
        await recorder.finish(session, {"status": AWAITING_APPROVAL, "pending": call.as_json()})


async def _resume_after_approval(
    services: Services,
    recorder: Recorder,
    execution_id: uuid.UUID,
    registry: Registry,
    hooks: RunHooks,
) -> list[BaseMessage]:
    """After a decision: the messages so far, plus the decided call's result (run if
    approved) and a note for calls that never ran. Empty for a fresh run."""
    history, pending, decision = replay(await stored_events(services.sessionmaker, execution_id, 0))
    if pending is None or decision is None:
        return []
    if decision == "approve":
        token = CURRENT_TOOL_CALL.set(pending.tool_call_id)
        try:
            content = await run_tool_call(registry, pending.tool, pending.args, hooks)
        finally:
            CURRENT_TOOL_CALL.reset(token)
    else:
        rejected = {"tool": pending.tool, "tool_call_id": pending.tool_call_id,
                    "error": "REJECTED: a person rejected this call; do not retry it"}  # fmt: skip
        await recorder.step("tool_result", rejected)
        content = tool_message_content(rejected)
    history.append(ToolMessage(content, tool_call_id=pending.tool_call_id))
    for call_id in unanswered_calls(history):
        skipped = {"tool_call_id": call_id, "error": "NOT_RUN: the run paused before this call"}
        await recorder.step("tool_result", skipped)
        history.append(ToolMessage(tool_message_content(skipped), tool_call_id=call_id))
    return history


async def _stream(agent: Any, messages: list[Any], limit: int) -> AsyncIterator[Any]:
    # Our middleware counts model and tool calls; the graph limit is only a backstop, sized for
    # the extra middleware nodes every model call passes through.
    config = {"recursion_limit": limit * 10 + 50}
    async for item in agent.astream(
        {"messages": messages}, config=config, stream_mode=["updates", "messages"]
    ):
        yield item


async def run_execution(services: Services, execution_id: uuid.UUID) -> str | None:
    """Run to a final status and return it (None when the execution was not runnable)."""
    claimed = await _start(services, execution_id)
    if claimed is None:
        return None
    execution, agent_row, next_seq = claimed
    recorder = Recorder(services, execution_id, next_seq)
    if execution.attempts > 1:  # a resumed or retried run keeps the steps recorded so far
        earlier = await stored_events(services.sessionmaker, execution_id, 0)
        recorder.steps = [event.data for event in earlier if event.type in STEP_TYPES]
    started = time.perf_counter()
    config = AgentConfig.model_validate(agent_row.config)
    tool_ids = list(agent_row.tool_ids)
    registry = await registry_for(services, execution.user_id, tool_ids)

    try:
        needed = await missing_authorization(
            services,
            registry,
            user_id=execution.user_id,
            agent_id=agent_row.id,
            tool_ids=tool_ids,
        )
    except OAuthNotConfigured as error:  # pausing would wait for a link nobody can be given
        await _finish(
            services, recorder, "failed", error=f"{error.code}: {error.message}", started=started
        )
        return "failed"
    if needed is not None:
        await _pause(services, recorder, needed)
        return AWAITING

    async def context_for(tool_id: str) -> ToolContext:
        tool = registry.tool(tool_id)
        # Raises NOT_PERMITTED / AUTH_REQUIRED, which the model reads as the tool's result.
        oauth = await credentials_for_tool(
            services, registry, user_id=execution.user_id, agent_tool_ids=tool_ids, tool_id=tool_id,
            agent_id=agent_row.id,
        )  # fmt: skip
        secrets: dict[str, str] = {}
        if tool.family.secrets:
            async with services.sessionmaker() as session:
                secrets = await load_secrets(
                    session, services.keyring, agent_row.id, tool.family.secrets
                )
        root = services.settings.files_root / str(execution.user_id)
        return ToolContext(
            user_id=str(execution.user_id),
            storage_root=root,
            agent_id=str(agent_row.id),
            execution_id=str(execution_id),
            settings=config.tool_settings.get(tool.family.id, {}),
            secrets=secrets,
            oauth=oauth,
            objects=services.object_store,
            extras={
                ALLOW_BOUND_EXTRA: services.settings.allow_private_hosts,
                ALLOW_SOCKETS_EXTRA: services.settings.allow_unix_sockets,
            },
        )

    async def tool_started(tool_id: str, args: dict[str, Any]) -> None:
        call_id = CURRENT_TOOL_CALL.get()
        await recorder.step("tool_call", {"tool": tool_id, "args": args, "tool_call_id": call_id})

    async def tool_finished(tool_id: str, result: Any, error: str | None, ms: int) -> None:
        data: dict[str, Any] = {"tool": tool_id, "duration_ms": ms}
        data["tool_call_id"] = CURRENT_TOOL_CALL.get()
        data |= {"error": error} if error else {"result": result}
        await recorder.step("tool_result", data)

    hooks = RunHooks(context_for, tool_started, tool_finished)
    RUN_HOOKS.set(hooks)  # this run's task (and the tasks the graph starts) see these hooks
    names = {registry.tool(t).spec.langchain_name: t for t in tool_ids}
    try:
        graph = _graph(services, registry, config, tool_ids, names)
    except PasarError as error:
        await recorder.step("model_call", {"error": error.message})
        await _finish(services, recorder, "failed", error=error.message, started=started)
        return "failed"

    messages: list[Any] = [*await _thread_history(services, execution)]
    messages.append({"role": "user", "content": _user_message(execution.input)})
    messages.extend(await _resume_after_approval(services, recorder, execution_id, registry, hooks))
    last_mark = time.perf_counter()
    final_text = ""
    try:
        async with asyncio.timeout(config.limits.timeout_s):
            async for mode, payload in _stream(graph, messages, config.limits.max_steps):
                if mode == "messages":
                    chunk = payload[0]
                    text = chunk.content if isinstance(chunk, AIMessageChunk) else None
                    if isinstance(text, str) and text:
                        await recorder.token(text)
                    continue
                for node, update_ in (payload or {}).items():
                    for message in (update_ or {}).get("messages", []):
                        if node == "model" and isinstance(message, AIMessage):
                            now = time.perf_counter()
                            final_text = _text(message)
                            await recorder.step(
                                "model_call",
                                {
                                    "content": final_text,
                                    "tool_calls": [
                                        {
                                            "name": call["name"],
                                            "args": call["args"],
                                            "id": call.get("id"),
                                            "tool": names.get(call["name"]),
                                        }
                                        for call in message.tool_calls
                                    ],
                                    "duration_ms": int((now - last_mark) * 1000),
                                },
                            )
                    last_mark = time.perf_counter()
    except ApprovalRequired as paused:
        await _pause_for_approval(services, recorder, paused.call)
        return AWAITING_APPROVAL
    except (ModelCallLimitExceededError, ToolCallLimitExceededError) as error:
        await _finish(services, recorder, "limit_exceeded", error=str(error), started=started)
        return "limit_exceeded"
    except TimeoutError:
        message = f"the run exceeded its {config.limits.timeout_s:g} s time limit"
        await _finish(services, recorder, "limit_exceeded", error=message, started=started)
        return "limit_exceeded"
    except asyncio.CancelledError as cancelled:
        shutdown = SHUTDOWN in cancelled.args
        status = "failed" if shutdown else "cancelled"
        reason = "the server shut down during the run" if shutdown else "cancelled on request"
        with contextlib.suppress(Exception):
            await asyncio.shield(_finish(services, recorder, status, error=reason, started=started))
        raise
    except Exception as error:  # a provider outage or a bug: recorded, never a crash
        log.warning("execution %s failed: %s", execution_id, type(error).__name__)
        text = f"{type(error).__name__}: {error}"
        await recorder.step("model_call", {"error": text[:ERROR_TEXT_LIMIT]})
        await _finish(services, recorder, "failed", error=text, started=started)
        return "failed"
    output = {"message": final_text}
    cache = services.result_cache
    if cache and config.cache_ttl_s and execution.input_hash:  # stored before anyone hears
        await cache.store(agent_row.id, execution.input_hash, output, config.cache_ttl_s)
    await _finish(services, recorder, "succeeded", output=output, started=started)
    return "succeeded"
