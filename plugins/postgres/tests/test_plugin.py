from __future__ import annotations

from importlib.metadata import version

import pasar_postgres
import pytest
from jsonschema import Draft202012Validator
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import Registry, build_registry
from pasar_core.specs import Effect, ToolSpec
from pasar_core.testing import assert_follows_contract
from pasar_postgres.limits import (
    MAX_STATEMENT_TIMEOUT_MS,
    TOOL_TIMEOUT_S,
    Limits,
    limits_from_settings,
)

EFFECTS = {
    "postgres:list_tables": Effect.READ,
    "postgres:describe_table": Effect.READ,
    "postgres:query": Effect.READ,
    "postgres:execute": Effect.DESTRUCTIVE,
}


def test_loads_through_the_entry_point(registry: Registry) -> None:
    assert registry.family_plugins["postgres"] == "postgres"
    assert {tool_id for tool_id in registry.tools if tool_id.startswith("postgres:")} == set(
        EFFECTS
    )


def test_family_follows_the_contract() -> None:
    registry = build_registry(build_plugin_manager(enabled=(), extra=[pasar_postgres]))
    family = registry.families["postgres"]
    assert_follows_contract(family)
    assert family.secrets == ("postgres_dsn",)
    assert family.version == version("pasar-postgres")
    assert family.settings_schema is not None
    Draft202012Validator.check_schema(family.settings_schema)


@pytest.mark.parametrize("tool", pasar_postgres.POSTGRES.tools, ids=lambda tool: tool.id)
def test_tool_specs(tool: ToolSpec) -> None:
    assert tool.effect is EFFECTS[tool.id]
    assert tool.input_schema["additionalProperties"] is False
    assert not tool.scopes
    assert tool.auth_provider is None
    # the database's statement timeout ends a statement before the core's deadline does
    assert tool.timeout_s == TOOL_TIMEOUT_S > MAX_STATEMENT_TIMEOUT_MS / 1000


def test_settings_are_clamped_to_hard_maxima() -> None:
    assert limits_from_settings({}) == Limits()
    limits = limits_from_settings(
        {"max_rows": 10**9, "max_bytes": 1, "statement_timeout_ms": -5, "default_schema": "s"}
    )
    assert limits.max_rows == 5_000
    assert limits.max_bytes == 4 * 1024
    assert limits.statement_timeout_ms == 100
    assert limits.default_schema == "s"
    assert limits_from_settings({"max_rows": True, "max_bytes": "big"}) == Limits()


def test_registry_accepts_valid_settings_and_refuses_others(registry: Registry) -> None:
    registry.check_tool_settings(
        {"postgres": {"max_rows": 50, "statement_timeout_ms": 2000}}, ["postgres:query"]
    )
    with pytest.raises(Exception, match="statement_timeout_ms"):
        registry.check_tool_settings(
            {"postgres": {"statement_timeout_ms": 10**7}}, ["postgres:query"]
        )
