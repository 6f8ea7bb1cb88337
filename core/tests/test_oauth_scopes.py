"""The scope compiler over random hierarchies and random action sets: always sufficient, never
redundant, never more than the actions need."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pasar_core.oauth.narrowing import IDENTITY_SCOPES, requested_scopes
from pasar_core.oauth.scopes import closure, compile_scopes, diff, least, uncovered
from pasar_core.registry import Registry
from pasar_core.specs import AuthProviderSpec, ScopeRisk, ScopeSpec

SCOPE_NAMES = [f"s{i}" for i in range(10)]


@st.composite
def providers(draw: st.DrawFn) -> AuthProviderSpec:
    """A random hierarchy: a DAG where a scope only covers scopes with a higher index."""
    scopes = []
    for index, name in enumerate(SCOPE_NAMES):
        later = SCOPE_NAMES[index + 1 :]
        covers = draw(st.frozensets(st.sampled_from(later), max_size=3)) if later else frozenset()
        risk = draw(st.sampled_from(list(ScopeRisk)))
        scopes.append(ScopeSpec(name, risk, name, covers))
    return AuthProviderSpec("p", "P", "https://a/auth", "https://a/token", tuple(scopes))


@settings(max_examples=300, deadline=None)
@given(providers(), st.frozensets(st.sampled_from(SCOPE_NAMES)))
def test_least_is_sufficient_irredundant_and_only_what_is_needed(
    provider: AuthProviderSpec, needed: frozenset[str]
) -> None:
    chosen = least(provider, needed)
    assert uncovered(provider, chosen, needed) == frozenset()  # sufficient
    assert chosen <= needed  # never a broader scope than some action asked for
    for scope in chosen:  # irredundant: no chosen scope is covered by another chosen one
        assert scope not in closure(provider, chosen - {scope})
        assert uncovered(provider, chosen - {scope}, needed)  # and each one is necessary


@settings(max_examples=100, deadline=None)
@given(st.frozensets(st.sampled_from(SCOPE_NAMES)), st.frozensets(st.sampled_from(SCOPE_NAMES)))
def test_diff_partitions_both_sides(before: frozenset[str], after: frozenset[str]) -> None:
    changes = diff(before, after)
    assert changes.added | changes.kept == after
    assert changes.removed | changes.kept == before
    assert not changes.added & changes.removed


def test_hierarchy_is_transitive() -> None:
    provider = AuthProviderSpec(
        "p", "P", "https://a/auth", "https://a/token",
        (ScopeSpec("all", ScopeRisk.RESTRICTED, covers=frozenset({"read"})),
         ScopeSpec("read", ScopeRisk.SENSITIVE, covers=frozenset({"meta"})),
         ScopeSpec("meta", ScopeRisk.NON_SENSITIVE)),
    )  # fmt: skip
    assert closure(provider, ["all"]) == {"all", "read", "meta"}
    assert least(provider, {"meta", "read"}) == {"read"}
    assert least(None, {"a", "b"}) == {"a", "b"}  # unknown provider: no hierarchy


def test_compile_scopes_names_the_actions_of_each_scope() -> None:
    from pasar_core.plugins import build_plugin_manager
    from pasar_core.registry import build_registry

    pasar_google_workspace = pytest.importorskip("pasar_google_workspace")
    registry: Registry = build_registry(
        build_plugin_manager(enabled=(), extra=[pasar_google_workspace])
    )
    (plan,) = compile_scopes(registry, ["docs:read", "docs:append", "sheets:list"]).values()
    by_scope = {scope.scope.rsplit("/", 1)[1]: scope for scope in plan.scopes}
    assert set(by_scope) == {"documents", "drive.metadata.readonly"}
    assert by_scope["documents"].tools == ("docs:append", "docs:read")
    assert by_scope["drive.metadata.readonly"].risk is ScopeRisk.RESTRICTED
    assert plan.highest_risk is ScopeRisk.RESTRICTED


@settings(max_examples=300, deadline=None)
@given(
    providers(),
    st.frozensets(st.sampled_from([*SCOPE_NAMES, "unlisted", "openid", "email", "profile"])),
    st.frozensets(st.sampled_from(SCOPE_NAMES), min_size=1),
)
def test_narrowing_asks_only_granted_scopes_and_never_ignores_an_unlisted_one(
    provider: AuthProviderSpec, granted: frozenset[str], needed: frozenset[str]
) -> None:
    asked = requested_scopes(provider, granted, needed)
    if asked is None:  # the grant's own token: nothing in it beyond what is needed
        assert "unlisted" not in granted
        assert uncovered(provider, granted - IDENTITY_SCOPES, needed) == uncovered(
            provider, granted, needed
        )
        return
    assert asked <= granted - IDENTITY_SCOPES  # never a scope the grant lacks
    assert granted - IDENTITY_SCOPES - asked  # something was narrowed away
    assert uncovered(provider, asked, needed) == uncovered(provider, granted, needed)


def test_narrowing_ignores_identity_scopes_alone() -> None:
    provider = AuthProviderSpec("p", "P", "https://a/auth", "https://a/token",
                                (ScopeSpec("s1", ScopeRisk.SENSITIVE, "s1"),))  # fmt: skip
    assert requested_scopes(provider, {"s1", "openid", "email"}, {"s1"}) is None
    assert requested_scopes(provider, {"s1", "openid", "unlisted"}, {"s1"}) == frozenset({"s1"})
