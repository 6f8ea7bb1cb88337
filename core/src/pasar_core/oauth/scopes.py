"""The scope compiler: an agent's actions -> the least set of provider scopes covering them.

"Least" means least privilege: every scope in the result is needed by some action, and no scope
in it is covered by another one in it. A grant covers a need when a granted scope equals or
(transitively) covers it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pasar_core.registry import Registry
from pasar_core.specs import AuthProviderSpec, ScopeRisk

RISK_ORDER = {ScopeRisk.NON_SENSITIVE: 0, ScopeRisk.SENSITIVE: 1, ScopeRisk.RESTRICTED: 2}


def closure(provider: AuthProviderSpec | None, scopes: Iterable[str]) -> frozenset[str]:
    """The scopes, and every scope they cover through the provider's hierarchy."""
    covers = {scope.id: scope.covers for scope in provider.scopes} if provider else {}
    seen: set[str] = set()
    todo = list(scopes)
    while todo:
        scope = todo.pop()
        if scope not in seen:
            seen.add(scope)
            todo.extend(covers.get(scope, ()))
    return frozenset(seen)


def is_covered(provider: AuthProviderSpec | None, granted: Iterable[str], scope: str) -> bool:
    return scope in closure(provider, granted)


def uncovered(
    provider: AuthProviderSpec | None, granted: Iterable[str], needed: Iterable[str]
) -> frozenset[str]:
    """The needed scopes the grant does not cover."""
    have = closure(provider, granted)
    return frozenset(scope for scope in needed if scope not in have)


def least(provider: AuthProviderSpec | None, needed: Iterable[str]) -> frozenset[str]:
    """`needed` without the scopes another needed scope already covers."""
    wanted = set(needed)
    strictly = {scope: closure(provider, [scope]) - {scope} for scope in wanted}
    return frozenset(
        scope
        for scope in wanted
        if not any(
            scope in strictly[other] and other not in strictly[scope]
            for other in wanted
            if other != scope
        )
    )


@dataclass(frozen=True, slots=True)
class CompiledScope:
    scope: str
    risk: ScopeRisk | None  # None: the provider is not installed
    description: str
    tools: tuple[str, ...]  # the actions that need it


@dataclass(frozen=True, slots=True)
class ProviderScopes:
    provider: str
    scopes: tuple[CompiledScope, ...]

    @property
    def scope_ids(self) -> frozenset[str]:
        return frozenset(scope.scope for scope in self.scopes)

    @property
    def highest_risk(self) -> ScopeRisk | None:
        risks = [scope.risk for scope in self.scopes if scope.risk is not None]
        return max(risks, key=RISK_ORDER.__getitem__) if risks else None


@dataclass(frozen=True, slots=True)
class ScopeDiff:
    added: frozenset[str]
    removed: frozenset[str]
    kept: frozenset[str]


def needed_scopes(registry: Registry, tool_ids: Iterable[str]) -> dict[str, dict[str, set[str]]]:
    """provider -> declared scope -> the tools declaring it (unknown tool ids raise)."""
    needs: dict[str, dict[str, set[str]]] = {}
    for tool_id in tool_ids:
        spec = registry.tool(tool_id).spec
        if spec.auth_provider:
            by_scope = needs.setdefault(spec.auth_provider, {})
            for scope in spec.scopes:
                by_scope.setdefault(scope, set()).add(tool_id)
    return needs


def compile_scopes(registry: Registry, tool_ids: Iterable[str]) -> dict[str, ProviderScopes]:
    """Per provider, the least scope set covering every action, each with its risk and actions."""
    plans: dict[str, ProviderScopes] = {}
    for provider_id, by_scope in sorted(needed_scopes(registry, tool_ids).items()):
        provider = registry.auth_providers.get(provider_id)
        specs = {scope.id: scope for scope in provider.scopes} if provider else {}
        compiled = []
        for scope in sorted(least(provider, by_scope)):
            covered = closure(provider, [scope])
            tools = sorted({t for need, ts in by_scope.items() if need in covered for t in ts})
            spec = specs.get(scope)
            compiled.append(
                CompiledScope(
                    scope=scope,
                    risk=spec.risk if spec else None,
                    description=spec.description if spec else "",
                    tools=tuple(tools),
                )
            )
        plans[provider_id] = ProviderScopes(provider=provider_id, scopes=tuple(compiled))
    return plans


def scope_sets(plans: Mapping[str, ProviderScopes]) -> dict[str, frozenset[str]]:
    return {provider: plan.scope_ids for provider, plan in plans.items()}


def diff(before: Iterable[str], after: Iterable[str]) -> ScopeDiff:
    old, new = frozenset(before), frozenset(after)
    return ScopeDiff(added=new - old, removed=old - new, kept=old & new)
