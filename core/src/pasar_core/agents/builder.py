"""Build a LangChain agent for one run from an agent's stored config and the registry."""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain.agents.middleware import (
    AgentMiddleware,
    ModelCallLimitMiddleware,
    ModelFallbackMiddleware,
    SummarizationMiddleware,
    ToolCallLimitMiddleware,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import StructuredTool
from langgraph.graph.state import CompiledStateGraph

from pasar_core.agents.config import AgentConfig
from pasar_core.agents.model_config import resolve_provider, split_model_ref, strategy_for
from pasar_core.errors import PasarError, ProviderUnavailable, ValidationFailed
from pasar_core.models.cache import ModelCache
from pasar_core.observability.tracing import Tracing
from pasar_core.registry import Registry
from pasar_core.specs import StrategyParts, ToolContext

# Called around each tool call: (tool id, args) before, (tool id, result | None, error | None,
# duration_ms) after. The runner uses them to record steps.
ToolStarted = Callable[[str, dict[str, Any]], Awaitable[None]]
ToolFinished = Callable[[str, Any, str | None, int], Awaitable[None]]
ContextFor = Callable[[str], Awaitable[ToolContext]]


def build_model(
    registry: Registry,
    model_ref: str,
    options: Mapping[str, Any],
    env: Mapping[str, str],
    cache: ModelCache | None = None,
) -> BaseChatModel:
    """The chat model for `model_ref`, from `cache` when one was built before."""
    if cache is not None:
        return cache.get(
            ModelCache.key(model_ref, options),
            lambda: build_model(registry, model_ref, options, env),
        )
    provider, model = resolve_provider(registry, model_ref)
    try:
        chat_model = provider.factory(model, dict(options), env)
    except PasarError:
        raise
    except Exception as error:
        raise ProviderUnavailable(f"could not build {model_ref}: {error}") from error
    if not isinstance(chat_model, BaseChatModel):
        raise ProviderUnavailable(f"provider {provider.id!r} did not return a LangChain chat model")
    return chat_model


ModelFinished = Callable[["ModelOutcome"], Awaitable[None]]
ToolRefused = Callable[[str, dict[str, Any], str | None], Awaitable[str]]
StepRecorded = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ModelAttempt:
    """One try of one model within a model call (several when fallbacks answer)."""

    model: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ModelOutcome:
    """A finished model call: the reply (or the error of the last model tried), how long it
    took and every model tried, in order."""

    message: AIMessage | None
    error: str | None
    duration_ms: int
    attempts: tuple[ModelAttempt, ...]


@dataclass(frozen=True, slots=True)
class RunHooks:
    """What one run does around the shared graph's calls: the tool context, recording each
    tool call and model call, and refusing calls of tools the agent did not declare."""

    context_for: ContextFor
    tool_started: ToolStarted
    tool_finished: ToolFinished
    model_finished: ModelFinished | None = None
    tool_refused: ToolRefused | None = None
    step_recorded: StepRecorded | None = None
    """Records a step a strategy adds (its plan; calls of its own tools)."""
    recorded_steps: Callable[[], list[dict[str, Any]]] | None = None
    """The run's steps so far, earlier attempts' included (what a resumed strategy reads)."""
    attempts: list[ModelAttempt] = field(default_factory=list)
    """Model tries of the model call in progress (the recording middleware fills it)."""
    tracing: Tracing = field(default_factory=Tracing)
    """Where the run's model and tool spans go (off unless tracing is configured)."""


# The current run's hooks. Compiled graphs are shared between runs, so a tool finds its run
# here (each run's task sets it; tasks the graph starts inherit it) rather than in a closure.
RUN_HOOKS: contextvars.ContextVar[RunHooks] = contextvars.ContextVar("pasar_run_hooks")


async def run_tool_call(
    registry: Registry, tool_id: str, args: dict[str, Any], hooks: RunHooks
) -> str:
    """One tool call as the model sees it: the result as JSON, or a JSON error it can read."""
    with hooks.tracing.span("pasar.tool", {"pasar.tool.id": tool_id}) as span:
        text, error = await _tool_call(registry, tool_id, args, hooks)
        if error is not None and span is not None:
            span.set_attribute("pasar.tool.error", error.code)
    return text


async def _tool_call(
    registry: Registry, tool_id: str, args: dict[str, Any], hooks: RunHooks
) -> tuple[str, PasarError | None]:
    await hooks.tool_started(tool_id, args)
    started = time.perf_counter()
    try:
        invoked = await registry.invoke_for_model(tool_id, await hooks.context_for(tool_id), args)
    except PasarError as error:
        elapsed = int((time.perf_counter() - started) * 1000)
        await hooks.tool_finished(tool_id, None, f"{error.code}: {error.message}", elapsed)
        # The model reads the failure and may recover; the run goes on.
        return json.dumps({"error": {"code": error.code, "message": error.message}}), error
    elapsed = int((time.perf_counter() - started) * 1000)
    await hooks.tool_finished(tool_id, invoked.result, None, elapsed)
    return invoked.text, None


def _langchain_tool(registry: Registry, tool_id: str) -> StructuredTool:
    spec = registry.tool(tool_id).spec

    async def call(**args: Any) -> str:
        return await run_tool_call(registry, tool_id, args, RUN_HOOKS.get())

    return StructuredTool.from_function(
        coroutine=call,
        name=spec.langchain_name,
        description=spec.description,
        args_schema=dict(spec.input_schema),
    )


def build_agent(
    registry: Registry,
    config: AgentConfig,
    tool_ids: list[str],
    env: Mapping[str, str],
    extra_middleware: Sequence[AgentMiddleware[Any, Any, Any]] = (),
    models: ModelCache | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The agent's strategy's graph over its tools (validated by the core), prompt, limits and
    the run's middleware."""
    from pasar_core.agents.recording import ModelAttempts, ModelSteps, RunBudget

    model = build_model(registry, config.model, config.model_options, env, models)
    refs = {id(model): config.model}
    middleware: list[AgentMiddleware[Any, Any, Any]] = [
        RunBudget(config.limits.max_steps, config.limits.max_tool_calls),
        ModelCallLimitMiddleware(run_limit=config.limits.max_steps, exit_behavior="error"),
        ToolCallLimitMiddleware(run_limit=config.limits.max_tool_calls, exit_behavior="error"),
        ModelSteps(),  # outside the fallbacks: records the call once, with every model tried
    ]
    if config.memory == "summary":  # the agent's own model writes the summary
        summary = config.summary
        middleware.insert(0, SummarizationMiddleware(
            model, trigger=("tokens", summary.trigger_tokens),
            keep=("messages", summary.keep_messages),
        ))  # fmt: skip
    if config.fallbacks:
        main_provider = split_model_ref(config.model)[0]
        fallbacks = []
        for ref in config.fallbacks:
            options = config.model_options if split_model_ref(ref)[0] == main_provider else {}
            fallback = build_model(registry, ref, options, env, models)
            refs.setdefault(id(fallback), ref)
            fallbacks.append(fallback)
        middleware.append(ModelFallbackMiddleware(*fallbacks))
    middleware.append(ModelAttempts(refs))  # inside the fallbacks: sees each model tried
    middleware.extend(extra_middleware)
    strategy = strategy_for(registry, config.strategy)
    tools = tuple(_langchain_tool(registry, tool_id) for tool_id in tool_ids)
    clash = strategy.internal_tools & {tool.name for tool in tools}
    if clash:  # a declared tool is never shadowed by a strategy's own, nor the reverse
        raise ValidationFailed(
            f"config.strategy: {strategy.id!r} adds tools named like the agent's: "
            + ", ".join(sorted(clash)),
            details={"field": "config.strategy", "tools": sorted(clash)},
        )
    parts = StrategyParts(model=model, tools=tools, system_prompt=config.system_prompt,
                          middleware=tuple(middleware), model_ref=config.model)  # fmt: skip
    return strategy.build(parts)  # type: ignore[no-any-return]
