from __future__ import annotations

from importlib.metadata import version

import pasar_web
import pytest
from jsonschema import Draft202012Validator
from pasar_core.errors import ValidationFailed
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import Registry, build_registry
from pasar_core.specs import Effect, ToolSpec
from pasar_core.testing import assert_follows_contract

EFFECTS = {
    "web:fetch": Effect.READ,
    "web:links": Effect.READ,
    "http:get": Effect.READ,
    "http:request": Effect.WRITE,
}


def test_loads_through_the_entry_point(registry: Registry) -> None:
    assert registry.family_plugins["web"] == "web"
    assert set(registry.tools) == set(EFFECTS)


def test_loads_as_an_extra_plugin() -> None:
    registry = build_registry(build_plugin_manager(enabled=(), extra=[pasar_web]))
    family = registry.families["web"]
    assert_follows_contract(family)
    assert family.version == version("pasar-web")
    assert family.settings_schema is not None
    Draft202012Validator.check_schema(family.settings_schema)


@pytest.mark.parametrize("tool", pasar_web.WEB.tools, ids=lambda tool: tool.id)
def test_tool_specs(tool: ToolSpec) -> None:
    Draft202012Validator.check_schema(tool.input_schema)
    Draft202012Validator.check_schema(tool.output_schema)
    assert tool.input_schema["additionalProperties"] is False
    assert set(tool.input_schema["required"]) <= set(tool.input_schema["properties"])
    for name, field in tool.input_schema["properties"].items():
        if "default" in field:
            assert not list(Draft202012Validator(field).iter_errors(field["default"])), name
    assert tool.effect is EFFECTS[tool.id]
    assert not tool.scopes
    assert tool.auth_provider is None


def test_allow_hosts_setting_is_validated(registry: Registry) -> None:
    good = {"allow_hosts": ["127.0.0.1:8080", "localhost", "[::1]:9000", "api.example.com"]}
    registry.check_tool_settings({"web": good}, ["web:fetch"])
    registry.check_tool_settings({"web": {}}, ["http:request"])
    for bad in (
        {"allow_hosts": ["http://example.com/"]},
        {"allow_hosts": ["user@example.com"]},
        {"allow_hosts": ["a b"]},
        {"allow_hosts": "example.com"},
        {"allow_hosts": ["x"] * 2},
        {"allow_hosts": [], "other": 1},
    ):
        with pytest.raises(ValidationFailed):
            registry.check_tool_settings({"web": bad}, ["web:fetch"])
