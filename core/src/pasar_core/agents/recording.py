"""Middleware that lets a run record its model calls truthfully from inside the shared graph.

`ModelSteps` wraps each model call (fallbacks included) and hands the outcome to the run's
hooks before the graph goes on to the tools, so a model call is recorded before the tool calls
it asked for. `ModelAttempts` sits inside the fallback middleware and notes every model tried
and why it failed, so the step says which model failed, why, and which one answered.
`RunBudget` holds the run's `max_steps` and `max_tool_calls` over every graph the run invokes
(a strategy such as `plan_execute` invokes several, and LangChain's limits count per invocation).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from langchain.agents.middleware import AgentMiddleware
from langchain.agents.middleware.model_call_limit import ModelCallLimitExceededError
from langchain.agents.middleware.tool_call_limit import ToolCallLimitExceededError
from langchain.agents.middleware.types import ModelRequest, ModelResponse
from langchain_core.messages import AIMessage
from langgraph.errors import GraphBubbleUp

from pasar_core.agents.builder import RUN_HOOKS, ModelAttempt, ModelOutcome, RunHooks

ERROR_TEXT_LIMIT = 2000
Handler = Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]]


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:ERROR_TEXT_LIMIT]


def _reply(response: Any) -> AIMessage | None:
    if isinstance(response, AIMessage):
        return response
    for message in getattr(response, "result", None) or []:
        if isinstance(message, AIMessage):
            return message
    return None


class ModelSteps(AgentMiddleware[Any, Any, Any]):
    """Reports each model call to the current run once it has an answer or has failed."""

    async def awrap_model_call(self, request: ModelRequest[Any], handler: Handler) -> Any:
        hooks = RUN_HOOKS.get(None)
        if hooks is None or hooks.model_finished is None:
            return await handler(request)
        hooks.attempts.clear()
        started = time.perf_counter()
        try:
            response = await handler(request)
        except GraphBubbleUp:
            raise
        except Exception as error:
            await hooks.model_finished(self._outcome(None, error_text(error), started))
            raise
        await hooks.model_finished(self._outcome(_reply(response), None, started))
        return response

    @staticmethod
    def _outcome(message: AIMessage | None, error: str | None, started: float) -> ModelOutcome:
        hooks = RUN_HOOKS.get()
        attempts = tuple(hooks.attempts)
        hooks.attempts.clear()
        duration_ms = int((time.perf_counter() - started) * 1000)
        return ModelOutcome(message, error, duration_ms, attempts)


class ModelAttempts(AgentMiddleware[Any, Any, Any]):
    """Notes which model each try used and how it ended (`refs`: model object id -> ref)."""

    def __init__(self, refs: Mapping[int, str]) -> None:
        super().__init__()
        self._refs = dict(refs)

    async def awrap_model_call(self, request: ModelRequest[Any], handler: Handler) -> Any:
        hooks = RUN_HOOKS.get(None)
        ref = self._refs.get(id(request.model), type(request.model).__name__)
        if hooks is None:
            return await self._call(request, handler, hooks, ref)
        with hooks.tracing.span("pasar.model", {"pasar.model": ref}):
            return await self._call(request, handler, hooks, ref)

    @staticmethod
    async def _call(request: ModelRequest[Any], handler: Handler, hooks: RunHooks | None,
                    ref: str) -> Any:  # fmt: skip
        try:
            response = await handler(request)
        except GraphBubbleUp:
            raise
        except Exception as error:
            if hooks is not None:
                hooks.attempts.append(ModelAttempt(ref, error_text(error)))
            raise
        if hooks is not None:
            hooks.attempts.append(ModelAttempt(ref))
        return response


class RunBudget(AgentMiddleware[Any, Any, Any]):
    """The run's model calls and tool calls, counted from its recorded steps (earlier attempts'
    included), whichever graph of the run makes them: past `max_steps` model calls, or a reply
    asking for more tool calls than `max_tool_calls` leaves, ends the run as LangChain's limit
    middleware does (`LIMIT_EXCEEDED`)."""

    def __init__(self, max_steps: int, max_tool_calls: int) -> None:
        super().__init__()
        self.max_steps, self.max_tool_calls = max_steps, max_tool_calls

    async def awrap_model_call(self, request: ModelRequest[Any], handler: Handler) -> Any:
        hooks = RUN_HOOKS.get(None)
        if hooks is None or hooks.recorded_steps is None:
            return await handler(request)
        made = self._count(hooks, "model_call")
        if made >= self.max_steps:
            raise ModelCallLimitExceededError(0, made, None, self.max_steps)
        response = await handler(request)
        reply = _reply(response)
        asked = len(reply.tool_calls) if reply is not None else 0
        called = self._count(hooks, "tool_call")
        if asked and called + asked > self.max_tool_calls:
            raise ToolCallLimitExceededError(0, called + asked, None, self.max_tool_calls)
        return response

    @staticmethod
    def _count(hooks: RunHooks, kind: str) -> int:
        assert hooks.recorded_steps is not None
        return sum(1 for step in hooks.recorded_steps() if step.get("type") == kind)
