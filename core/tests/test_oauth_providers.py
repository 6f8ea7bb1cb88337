"""The `register_auth_providers` hook: collected into the registry, duplicates refused, tool
scopes checked against the provider's list."""

from __future__ import annotations

import pytest
from pasar_core.errors import DuplicateRegistration, InvalidRegistration
from pasar_core.hookspecs import hookimpl
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import build_registry
from pasar_core.specs import (
    AuthProviderSpec,
    ScopeRisk,
    ScopeSpec,
    ToolContext,
    ToolFamily,
    ToolSpec,
)

ACME = AuthProviderSpec(
    id="acme",
    title="Acme",
    authorize_url="https://acme.test/authorize",
    token_url="https://acme.test/token",
    scopes=(
        ScopeSpec("write", ScopeRisk.SENSITIVE, "Write", frozenset({"read"})),
        ScopeSpec("read", ScopeRisk.NON_SENSITIVE, "Read"),
    ),
)


async def run(ctx: ToolContext, args: dict[str, object]) -> dict[str, object]:
    return {}


def family(scope: str) -> ToolFamily:
    tool = ToolSpec(id="acme:read", title="Read", description="Read.",
                    input_schema={"type": "object"}, output_schema={"type": "object"}, run=run,
                    auth_provider="acme", scopes=frozenset({scope}))  # fmt: skip
    return ToolFamily(id="acme", title="Acme", description="Acme.", tools=(tool,))


class AcmePlugin:
    @hookimpl
    def register_auth_providers(self) -> list[AuthProviderSpec]:
        return [ACME]

    @hookimpl
    def register_tool_families(self) -> list[ToolFamily]:
        return [family("read")]


class AcmeAgain:
    @hookimpl
    def register_auth_providers(self) -> list[AuthProviderSpec]:
        return [ACME]


class BadScopeTool:
    @hookimpl
    def register_tool_families(self) -> list[ToolFamily]:
        return [family("admin")]


class BadCovers:
    @hookimpl
    def register_auth_providers(self) -> list[AuthProviderSpec]:
        scopes = (ScopeSpec("all", ScopeRisk.RESTRICTED, covers=frozenset({"missing"})),)
        return [AuthProviderSpec("bad", "Bad", "https://b/a", "https://b/t", scopes)]


def test_providers_are_collected() -> None:
    registry = build_registry(build_plugin_manager(enabled=(), extra=[AcmePlugin()]))
    assert registry.auth_providers == {"acme": ACME}


def test_a_provider_registered_twice_refuses_start_up() -> None:
    with pytest.raises(DuplicateRegistration, match="acme"):
        build_registry(build_plugin_manager(enabled=(), extra=[AcmePlugin(), AcmeAgain()]))


def test_a_tool_declaring_an_unknown_scope_refuses_start_up() -> None:
    class Provider:
        @hookimpl
        def register_auth_providers(self) -> list[AuthProviderSpec]:
            return [ACME]

    with pytest.raises(InvalidRegistration, match="unknown to provider 'acme': admin"):
        build_registry(build_plugin_manager(enabled=(), extra=[Provider(), BadScopeTool()]))


def test_covers_must_name_listed_scopes() -> None:
    with pytest.raises(InvalidRegistration, match="missing"):
        build_registry(build_plugin_manager(enabled=(), extra=[BadCovers()]))
