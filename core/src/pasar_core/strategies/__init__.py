"""Reasoning strategies: how an agent's graph is composed from its model, tools and middleware.

Built-ins (`react`, `plan_execute`, `todo`) are registered through the `register_strategies`
hook like any plugin's; `plans` is what a strategy uses to record its plan in the run's steps."""

from __future__ import annotations

from dataclasses import dataclass

from pasar_core.registry import Registry


@dataclass(frozen=True, slots=True)
class StrategyView:
    """A strategy as the catalogue lists it."""

    id: str
    title: str
    description: str


def strategy_catalogue(registry: Registry) -> list[StrategyView]:
    """Every registered strategy, by id: what an agent's `config.strategy` may name."""
    return [
        StrategyView(spec.id, spec.title, spec.description)
        for spec in sorted(registry.strategies.values(), key=lambda spec: spec.id)
    ]
