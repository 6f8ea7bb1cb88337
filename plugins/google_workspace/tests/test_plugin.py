"""The family and the Google provider follow the contract; the scope compiler over Google's
real hierarchy and random action sets."""

from __future__ import annotations

import pasar_google_workspace
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pasar_core.oauth.scopes import closure, compile_scopes, uncovered
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import Registry, build_registry
from pasar_core.specs import Effect, ScopeRisk
from pasar_core.testing import assert_follows_contract
from pasar_google_workspace import GOOGLE, GOOGLE_WORKSPACE
from pasar_google_workspace import provider as g

TOOL_IDS = sorted(tool.id for tool in GOOGLE_WORKSPACE.tools)
_REGISTRY = build_registry(build_plugin_manager(enabled=(), extra=[pasar_google_workspace]))


def test_family_follows_the_contract(registry: Registry) -> None:
    assert_follows_contract(registry.families["google_workspace"])
    for tool in GOOGLE_WORKSPACE.tools:
        Draft202012Validator.check_schema(tool.input_schema)
        assert tool.auth_provider == "google"
        assert len(tool.scopes) == 1
    assert registry.auth_providers == {"google": GOOGLE}


def test_the_catalogue_and_effects() -> None:
    effects = {tool.id: tool.effect for tool in GOOGLE_WORKSPACE.tools}
    assert set(effects) >= {"gmail:read", "gmail:draft", "gmail:send", "docs:read",
                            "docs:create", "docs:append", "sheets:read", "sheets:write",
                            "sheets:list", "calendar:read", "calendar:create"}  # fmt: skip
    assert effects["gmail:send"] is Effect.SEND
    assert {t for t, e in effects.items() if e is Effect.READ} == {
        "gmail:read", "docs:read", "sheets:read", "sheets:list", "calendar:read", "drive:search"
    }  # fmt: skip


def test_google_hierarchy() -> None:
    assert closure(GOOGLE, [g.GMAIL_MODIFY]) >= {g.GMAIL_READONLY, g.GMAIL_COMPOSE, g.GMAIL_SEND}
    assert closure(GOOGLE, [g.DRIVE]) >= {g.DRIVE_READONLY, g.DRIVE_FILE,
                                          g.DRIVE_METADATA_READONLY}  # fmt: skip
    assert g.SPREADSHEETS_READONLY in closure(GOOGLE, [g.SPREADSHEETS])
    assert g.DOCUMENTS_READONLY in closure(GOOGLE, [g.DOCUMENTS])
    assert closure(GOOGLE, [g.CALENDAR]) >= {g.CALENDAR_READONLY, g.CALENDAR_EVENTS}
    assert g.GMAIL_SEND not in closure(GOOGLE, [g.GMAIL_COMPOSE, g.GMAIL_READONLY])
    risks = {scope.id: scope.risk for scope in GOOGLE.scopes}
    assert risks[g.DRIVE_FILE] is ScopeRisk.NON_SENSITIVE
    assert risks[g.GMAIL_READONLY] is ScopeRisk.RESTRICTED
    assert risks[g.GMAIL_SEND] is ScopeRisk.SENSITIVE
    assert GOOGLE.authorize_params == {"access_type": "offline", "include_granted_scopes": "true"}


def test_cross_api_needs(registry: Registry) -> None:
    plan = compile_scopes(registry, ["sheets:read", "sheets:list"])["google"]
    assert plan.scope_ids == {g.SPREADSHEETS_READONLY, g.DRIVE_METADATA_READONLY}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(TOOL_IDS), unique=True))
def test_compiled_scopes_are_sufficient_and_never_redundant(tool_ids: list[str]) -> None:
    registry = _REGISTRY
    plans = compile_scopes(registry, tool_ids)
    if not tool_ids:
        assert plans == {}
        return
    chosen = plans["google"].scope_ids
    for tool_id in tool_ids:  # sufficient: every action's scopes are covered
        assert not uncovered(GOOGLE, chosen, registry.tool(tool_id).spec.scopes)
    for scope in chosen:  # never redundant, and each scope is there for some action
        assert scope not in closure(GOOGLE, chosen - {scope})
        assert any(scope in registry.tool(t).spec.scopes for t in tool_ids)
    covered_tools = {t for s in plans["google"].scopes for t in s.tools}
    assert covered_tools == set(tool_ids)
