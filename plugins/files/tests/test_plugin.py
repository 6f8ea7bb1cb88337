from __future__ import annotations

from importlib.metadata import version

import pasar_files
import pytest
from jsonschema import Draft202012Validator
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import build_registry
from pasar_core.specs import Effect, ToolSpec

TOOL_IDS = {
    "files:list",
    "txt:read",
    "txt:write",
    "csv:read",
    "csv:write",
    "pdf:read",
    "pdf:create",
    "xlsx:read",
    "xlsx:write",
    "pptx:read",
    "pptx:create",
    "docx:read",
    "docx:create",
}


def test_loads_through_the_entry_point() -> None:
    registry = build_registry(build_plugin_manager(enabled=("files",)))
    assert registry.family_plugins["files"] == "files"
    assert set(registry.tools) == TOOL_IDS


def test_loads_as_an_extra_plugin() -> None:
    registry = build_registry(build_plugin_manager(enabled=(), extra=[pasar_files]))
    family = registry.families["files"]
    assert family.title
    assert family.description
    assert family.version == version("pasar-files")
    assert {tool.id for tool in family.tools} == TOOL_IDS


@pytest.mark.parametrize("tool", pasar_files.FILES.tools, ids=lambda tool: tool.id)
def test_tool_schemas_are_valid(tool: ToolSpec) -> None:
    Draft202012Validator.check_schema(tool.input_schema)
    Draft202012Validator.check_schema(tool.output_schema)
    assert tool.input_schema["type"] == "object"
    assert tool.input_schema["additionalProperties"] is False
    assert set(tool.input_schema.get("required", [])) <= set(tool.input_schema["properties"])
    for name, field in tool.input_schema["properties"].items():
        if "default" in field:
            assert not list(Draft202012Validator(field).iter_errors(field["default"])), name
    assert tool.description
    assert tool.output_schema["additionalProperties"] is False
    expected = Effect.READ if tool.id.endswith((":read", ":list")) else Effect.WRITE
    assert tool.effect is expected
    assert tool.timeout_s > 0
