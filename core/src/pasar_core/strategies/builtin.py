"""The built-in strategies, registered through `register_strategies` like any plugin's. Each
module (and LangChain with it) is imported when a graph is first built, not at start-up."""

from __future__ import annotations

from typing import Any

from pasar_core.hookspecs import hookimpl
from pasar_core.specs import StrategyParts, StrategySpec

WRITE_TODOS = "write_todos"
"""The tool LangChain's todo-list middleware adds (`todo`'s one internal tool)."""


def _build_react(parts: StrategyParts) -> Any:
    from pasar_core.strategies.react import build_react

    return build_react(parts)


def _build_plan_execute(parts: StrategyParts) -> Any:
    from pasar_core.strategies.plan_execute import build_plan_execute

    return build_plan_execute(parts)


def _build_todo(parts: StrategyParts) -> Any:
    from pasar_core.strategies.todo import build_todo

    return build_todo(parts)


REACT = StrategySpec(
    id="react",
    title="Step by step (ReAct)",
    description=(
        "The model thinks, calls a tool, reads the result, and repeats until it can answer."
    ),
    build=_build_react,
)
PLAN_EXECUTE = StrategySpec(
    id="plan_execute",
    title="Plan, then execute",
    description=(
        "The model first writes a plan, then carries out its steps one by one with the tools; "
        "when a tool fails it re-plans the remaining work. Each plan is recorded as a step."
    ),
    build=_build_plan_execute,
)
TODO = StrategySpec(
    id="todo",
    title="To-do list",
    description=(
        "The model writes a to-do list for the task, works through it with the tools and "
        "updates it as it goes; each list is recorded as a plan step."
    ),
    build=_build_todo,
    internal_tools=frozenset({WRITE_TODOS}),
)


@hookimpl
def register_strategies() -> list[StrategySpec]:
    return [REACT, PLAN_EXECUTE, TODO]
