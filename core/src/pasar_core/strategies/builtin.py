"""The built-in strategies, registered through `register_strategies` like any plugin's."""

from __future__ import annotations

from pasar_core.hookspecs import hookimpl
from pasar_core.specs import StrategySpec
from pasar_core.strategies.plan_execute import PLAN_EXECUTE
from pasar_core.strategies.react import REACT
from pasar_core.strategies.todo import TODO


@hookimpl
def register_strategies() -> list[StrategySpec]:
    return [REACT, PLAN_EXECUTE, TODO]
