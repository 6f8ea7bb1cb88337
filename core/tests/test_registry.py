"""The registry: duplicate and invalid registrations refused at start-up, invocation checked."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pasar_core import Effect, LLMProviderSpec, ToolContext, ToolFamily, ToolSpec, hookimpl
from pasar_core.errors import (
    DuplicateRegistration,
    InvalidRegistration,
    PluginError,
    PluginNotFound,
    ToolError,
    ToolInputInvalid,
    ToolNotFound,
    ToolTimeout,
    UnknownTools,
)
from pasar_core.plugins import build_plugin_manager, describe_plugins
from pasar_core.registry import build_registry

OBJECT = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
          "additionalProperties": False}  # fmt: skip


async def double(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return {"n": args["n"] * 2}


def tool(tool_id: str = "math:double", **changes: Any) -> ToolSpec:
    fields: dict[str, Any] = {
        "id": tool_id,
        "title": "Double",
        "description": "Doubles n.",
        "input_schema": OBJECT,
        "output_schema": OBJECT,
        "run": double,
    }
    return ToolSpec(**(fields | changes))


def plugin_with(*tools: ToolSpec, family_id: str = "math") -> object:
    class Plugin:
        @hookimpl
        def register_tool_families(self) -> list[ToolFamily]:
            return [ToolFamily(id=family_id, title="Math", description="Numbers.", tools=tools)]

    return Plugin()


def test_empty_manager_has_no_tools() -> None:
    registry = build_registry(build_plugin_manager(enabled=()))
    assert registry.tools == {}
    assert registry.families == {}


def test_unknown_plugin_name_is_refused() -> None:
    with pytest.raises(PluginNotFound, match="no-such-plugin"):
        build_plugin_manager(enabled=("no-such-plugin",))


def test_files_plugin_is_found_through_its_entry_point() -> None:
    pm = build_plugin_manager()
    infos = {info.name: info for info in describe_plugins(pm)}
    assert infos["files"].distribution == "pasar-files"
    assert infos["files"].version
    assert "txt:read" in build_registry(pm).tools


def test_duplicate_tool_ids_name_both_plugins() -> None:
    pm = build_plugin_manager(
        enabled=(), extra=[plugin_with(tool()), plugin_with(tool(), family_id="other")]
    )
    with pytest.raises(DuplicateRegistration, match="math:double"):
        build_registry(pm)


def test_duplicate_family_ids_are_refused() -> None:
    pm = build_plugin_manager(
        enabled=(), extra=[plugin_with(tool()), plugin_with(tool("math:triple"))]
    )
    with pytest.raises(DuplicateRegistration, match="family 'math'"):
        build_registry(pm)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "Double"}, "service:action"),
        ({"id": "math:Double"}, "service:action"),
        ({"input_schema": {"type": "nonsense"}}, "input_schema is not valid"),
        ({"output_schema": {"type": 3}}, "output_schema is not valid"),
        ({"input_schema": {"type": "array"}}, "input_schema must have type 'object'"),
        ({"scopes": frozenset({"x"})}, "scopes need an auth_provider"),
        ({"timeout_s": 0}, "timeout_s must be positive"),
        ({"description": "  "}, "must not be empty"),
        ({"effect": "read"}, "effect must be"),
    ],
)
def test_invalid_tools_are_refused_with_a_clear_message(
    changes: dict[str, Any], message: str
) -> None:
    pm = build_plugin_manager(enabled=(), extra=[plugin_with(tool(**changes))])
    with pytest.raises(InvalidRegistration, match=message):
        build_registry(pm)


def test_a_plugin_returning_the_wrong_type_is_refused() -> None:
    class Broken:
        @hookimpl
        def register_tool_families(self) -> list[object]:
            return [{"id": "not-a-family"}]

    with pytest.raises(InvalidRegistration, match="not ToolFamily"):
        build_registry(build_plugin_manager(enabled=(), extra=[Broken()]))


@pytest.fixture
def registry_of() -> Any:
    def build(*tools: ToolSpec) -> Any:
        return build_registry(build_plugin_manager(enabled=(), extra=[plugin_with(*tools)]))

    return build


@pytest.mark.anyio
async def test_invoke_validates_input_before_run(
    registry_of: Any, tool_context: ToolContext
) -> None:
    calls = []

    async def spy(ctx: ToolContext, args: dict[str, Any]) -> Any:
        calls.append(args)
        return {"n": 1}

    registry = registry_of(tool(run=spy))
    bad: object
    for bad in ({}, {"n": "2"}, {"n": 1, "extra": True}, [], None):
        with pytest.raises(ToolInputInvalid):
            await registry.invoke("math:double", tool_context, bad)
    assert calls == []
    assert await registry.invoke("math:double", tool_context, {"n": 2}) == {"n": 1}


@pytest.mark.anyio
async def test_invoke_checks_output_and_names_the_plugin(
    registry_of: Any, tool_context: ToolContext
) -> None:
    async def wrong(ctx: ToolContext, args: dict[str, Any]) -> Any:
        return {"n": "not a number"}

    registry = registry_of(tool(run=wrong))
    with pytest.raises(PluginError, match="output_schema") as caught:
        await registry.invoke("math:double", tool_context, {"n": 1})
    assert caught.value.code == "TOOL_OUTPUT_INVALID"


@pytest.mark.anyio
async def test_invoke_wraps_crashes_and_keeps_tool_errors(
    registry_of: Any, tool_context: ToolContext
) -> None:
    async def crash(ctx: ToolContext, args: dict[str, Any]) -> Any:
        raise KeyError("boom")

    async def refuse(ctx: ToolContext, args: dict[str, Any]) -> Any:
        raise ToolError("no such file")

    registry = registry_of(tool("math:crash", run=crash), tool("math:refuse", run=refuse))
    with pytest.raises(PluginError, match="KeyError"):
        await registry.invoke("math:crash", tool_context, {"n": 1})
    with pytest.raises(ToolError, match="no such file"):
        await registry.invoke("math:refuse", tool_context, {"n": 1})


@pytest.mark.anyio
async def test_invoke_enforces_the_tool_timeout(
    registry_of: Any, tool_context: ToolContext
) -> None:
    async def slow(ctx: ToolContext, args: dict[str, Any]) -> Any:
        await asyncio.sleep(10)
        return {"n": 0}

    registry = registry_of(tool(run=slow, timeout_s=0.05))
    with pytest.raises(ToolTimeout, match=r"0\.05 s"):
        await registry.invoke("math:double", tool_context, {"n": 1})


@pytest.mark.anyio
async def test_unknown_tools(registry_of: Any, tool_context: ToolContext) -> None:
    registry = registry_of(tool())
    with pytest.raises(ToolNotFound):
        await registry.invoke("math:nope", tool_context, {"n": 1})
    with pytest.raises(UnknownTools) as caught:
        registry.require_tools(["math:double", "b:x", "a:y"])
    assert caught.value.unknown == ["a:y", "b:x"]


def test_effect_values_are_the_documented_levels() -> None:
    assert [effect.value for effect in Effect] == ["read", "write", "send", "destructive"]


def provider_plugin(*provider_ids: str) -> object:
    class Providers:
        @hookimpl
        def register_llm_providers(self) -> list[LLMProviderSpec]:
            return [
                LLMProviderSpec(
                    id=pid, title=pid, factory=lambda model, options, env: (model, options)
                )
                for pid in provider_ids
            ]

    return Providers()


def test_llm_providers_are_collected_by_id() -> None:
    registry = build_registry(
        build_plugin_manager(enabled=(), extra=[provider_plugin("alpha", "beta")])
    )
    assert sorted(registry.llm_providers) == ["alpha", "beta"]
    assert registry.llm_providers["alpha"].factory("m", {"t": 1}, {}) == ("m", {"t": 1})


def test_duplicate_llm_providers_are_refused() -> None:
    pm = build_plugin_manager(
        enabled=(), extra=[provider_plugin("alpha"), provider_plugin("alpha")]
    )
    with pytest.raises(DuplicateRegistration, match="alpha"):
        build_registry(pm)
