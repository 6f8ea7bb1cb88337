"""What a strategy's graph records in the current run: its plan (a `plan` step, visible over
REST, GraphQL and SSE like every step) and the calls of tools it adds itself.

Compiled graphs are shared between runs, so these find the run through `RUN_HOOKS` (set by the
runner for each run's task). Outside a run (a graph invoked directly) they do nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pasar_core.agents.builder import RUN_HOOKS

PLAN_STEP = "plan"


async def record_plan(strategy: str, plan: Mapping[str, Any]) -> None:
    """A `plan` step: `{"strategy": strategy, **plan}` (keep it JSON)."""
    hooks = RUN_HOOKS.get(None)
    if hooks is not None and hooks.step_recorded is not None:
        await hooks.step_recorded(PLAN_STEP, {"strategy": strategy, **plan})


def recorded_plan(strategy: str) -> dict[str, Any] | None:
    """The latest plan `strategy` recorded in this run: what a resumed run continues from."""
    hooks = RUN_HOOKS.get(None)
    if hooks is None or hooks.recorded_steps is None:
        return None
    for step in reversed(hooks.recorded_steps()):
        if step.get("type") == PLAN_STEP and step.get("strategy") == strategy:
            return dict(step)
    return None


def failed_calls() -> dict[str, str] | None:
    """The run's tool calls that failed so far (their `tool_result` has an `error`), by call
    id; None outside a run."""
    hooks = RUN_HOOKS.get(None)
    if hooks is None or hooks.recorded_steps is None:
        return None
    return {
        str(step["tool_call_id"]): str(step["error"])
        for step in hooks.recorded_steps()
        if step.get("type") == "tool_result" and step.get("tool_call_id") and "error" in step
    }


async def record_internal_call(
    name: str, args: Mapping[str, Any], call_id: str | None, result: Any, error: str | None = None
) -> None:
    """A call of a strategy's own tool, as a `tool_call` and a `tool_result` step (`tool`:
    None, `internal`: true), so a resumed run replays its answer to the model."""
    hooks = RUN_HOOKS.get(None)
    if hooks is None or hooks.step_recorded is None:
        return
    call = {"tool": None, "name": name, "tool_call_id": call_id, "internal": True}
    await hooks.step_recorded("tool_call", {**call, "args": dict(args)})
    outcome = {"error": error} if error is not None else {"result": result}
    await hooks.step_recorded("tool_result", {**call, **outcome})
