"""The publisher's kit (`pasar_core.testing`): its contract check is start-up's registry check,
and `pasar_plugin` calls a plugin's tools through the core's validation."""

from __future__ import annotations

import types
from typing import Any

import pytest
from pasar_core import Effect, ToolContext, ToolFamily, ToolSpec, hookimpl
from pasar_core.errors import (
    DuplicateRegistration,
    InvalidRegistration,
    PluginError,
    PluginNotFound,
    ToolInputInvalid,
    ToolOutputInvalid,
)
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import build_registry, registration_problems
from pasar_core.testing import PluginUnderTest, assert_follows_contract, contract_problems

OBJECT = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


async def double(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return {"n": args["n"] * 2} if args["n"] >= 0 else {"n": "negative"}


def tool(tool_id: str = "math:double", **changes: Any) -> ToolSpec:
    fields: dict[str, Any] = {
        "id": tool_id,
        "title": "Double",
        "description": "Doubles n.",
        "input_schema": OBJECT,
        "output_schema": OBJECT,
        "effect": Effect.READ,
        "run": double,
    }
    return ToolSpec(**(fields | changes))


def family(*tools: ToolSpec, family_id: str = "math", **changes: Any) -> ToolFamily:
    fields: dict[str, Any] = {"id": family_id, "title": "Math", "description": "Numbers."}
    return ToolFamily(**(fields | changes), tools=tools)


def module_with(*families: ToolFamily, name: str = "pasar_math") -> types.ModuleType:
    """A plugin as a publisher writes it: a module with a hook implementation."""
    module = types.ModuleType(name)

    @hookimpl
    def register_tool_families() -> list[ToolFamily]:
        return list(families)

    module.register_tool_families = register_tool_families  # type: ignore[attr-defined]
    return module


BROKEN = family(
    tool("Math:Bad", input_schema={"type": "array"}),
    tool("math:scoped", scopes=frozenset({"x"}), timeout_s=0),
    tool("math:double"),
    tool("math:double"),
    secrets=("Not-A-Name",),
)


def test_a_good_plugin_has_no_problems() -> None:
    plugin = module_with(family(tool()))
    assert contract_problems(plugin) == []
    assert_follows_contract(plugin)
    assert_follows_contract(family(tool()))


def test_every_problem_is_listed_with_its_code() -> None:
    problems = contract_problems(module_with(BROKEN))
    lines = [str(problem) for problem in problems]
    expected = [
        ("INVALID_REGISTRATION", "secret name 'Not-A-Name'"),
        ("INVALID_REGISTRATION", "tool 'Math:Bad': id must look like 'service:action'"),
        ("INVALID_REGISTRATION", "tool 'Math:Bad': input_schema must have type 'object'"),
        ("INVALID_REGISTRATION", "tool 'math:scoped': scopes need an auth_provider"),
        ("INVALID_REGISTRATION", "tool 'math:scoped': timeout_s must be positive"),
        ("DUPLICATE_REGISTRATION", "tool id 'math:double' is registered by both"),
    ]
    assert len(lines) == len(expected), lines
    for (code, text), line in zip(expected, lines, strict=True):
        assert line.startswith(f"{code}: plugin 'pasar_math'") or line.startswith(f"{code}: tool")
        assert text in line


def test_the_kit_refuses_exactly_what_start_up_refuses() -> None:
    plugin = module_with(BROKEN)
    pm = build_plugin_manager(enabled=(), extra=[plugin])
    with pytest.raises(DuplicateRegistration) as refused:
        build_registry(pm)
    problems = registration_problems(pm)
    assert problems == contract_problems(plugin)
    for problem in problems:
        assert problem.message in refused.value.message
    with pytest.raises(AssertionError) as failed:
        assert_follows_contract(plugin)
    assert all(str(problem) in str(failed.value) for problem in problems)


def test_only_invalid_problems_refuse_with_invalid_registration() -> None:
    plugin = module_with(family(tool(effect="read")))
    with pytest.raises(InvalidRegistration, match="effect must be") as refused:
        build_registry(build_plugin_manager(enabled=(), extra=[plugin]))
    assert type(refused.value) is InvalidRegistration
    assert [p.code for p in contract_problems(plugin)] == ["INVALID_REGISTRATION"]


def test_a_hook_that_raises_is_a_plugin_error_naming_the_plugin() -> None:
    module = types.ModuleType("pasar_crashing")

    @hookimpl
    def register_tool_families() -> list[ToolFamily]:
        raise KeyError("region")

    module.register_tool_families = register_tool_families  # type: ignore[attr-defined]
    [problem] = contract_problems(module)
    assert problem.code == "PLUGIN_ERROR"
    assert "'pasar_crashing': register_tool_families raised KeyError" in problem.message
    with pytest.raises(PluginError) as refused:
        build_registry(build_plugin_manager(enabled=(), extra=[module]))
    assert refused.value.message == problem.message
    assert refused.value.details == {"plugin": "pasar_crashing"}
    assert isinstance(refused.value.__cause__, KeyError)


def test_wrong_types_and_unknown_plugins() -> None:
    class WrongType:
        @hookimpl
        def register_tool_families(self) -> list[object]:
            return [{"id": "math"}]

    [problem] = contract_problems(WrongType())
    assert "returned dict, not ToolFamily" in problem.message
    with pytest.raises(PluginNotFound):
        contract_problems("no-such-plugin")


def test_an_installed_plugin_by_entry_point_name() -> None:
    assert contract_problems("files") == []
    assert_follows_contract("files")


@pytest.mark.anyio
async def test_pasar_plugin_calls_tools_through_the_core(pasar_plugin: Any) -> None:
    math: PluginUnderTest = pasar_plugin(module_with(family(tool())))
    assert set(math.registry.tools) == {"math:double"}
    assert await math.call("math:double", {"n": 2}) == {"n": 4}
    with pytest.raises(ToolInputInvalid, match="/n"):
        await math.call("math:double", {"n": "two"})
    with pytest.raises(ToolOutputInvalid, match="output_schema"):
        await math.call("math:double", {"n": -1})


@pytest.mark.anyio
async def test_pasar_plugin_loads_an_installed_plugin_alone(pasar_plugin: Any) -> None:
    files: PluginUnderTest = pasar_plugin("files")
    assert set(files.registry.family_plugins.values()) == {"files"}
    await files.call("txt:write", {"path": "a.txt", "content": "hi"})
    assert (await files.call("txt:read", {"path": "a.txt"}))["content"] == "hi"


def test_pasar_plugin_refuses_a_plugin_start_up_refuses(pasar_plugin: Any) -> None:
    with pytest.raises(DuplicateRegistration):
        pasar_plugin(module_with(BROKEN))
