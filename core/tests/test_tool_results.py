"""Every tool result is capped in the core, measured on the JSON the model reads, and checked off
the event loop when it is not small."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pasar_core import ToolContext, ToolFamily, ToolSpec, hookimpl
from pasar_core.agents.builder import RunHooks, run_tool_call
from pasar_core.errors import PluginError, ToolResultTooLarge
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import Registry, build_registry
from pasar_core.results import DEFAULT_MAX_TOOL_RESULT_BYTES, is_small, model_json, size_floor
from pasar_core.settings import Settings

pytestmark = pytest.mark.anyio

ROWS = {
    "type": "object",
    "required": ["rows"],
    "properties": {
        "rows": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "name"],
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
            },
        }
    },
}
ARGS = {
    "type": "object",
    "properties": {"n": {"type": "integer"}, "text": {"type": "string"}},
    "additionalProperties": False,
}


def bulk_family(events: list[str] | None = None) -> object:
    """A throwaway family whose tool returns `n` rows named `text` (recording when it returns)."""

    async def rows(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        result = {"rows": [{"id": i, "name": args.get("text", "x")} for i in range(args["n"])]}
        if events is not None:
            events.append("returned")
        return result

    async def circular(ctx: ToolContext, args: dict[str, Any]) -> Any:
        loop: list[Any] = []
        loop.append(loop)
        return {"rows": loop}

    async def tuple_keys(ctx: ToolContext, args: dict[str, Any]) -> Any:
        return {(1, 2): "a key JSON cannot hold"}

    spec = ToolSpec(
        id="bulk:rows", title="Rows", description="Many rows.", input_schema=ARGS,
        output_schema=ROWS, run=rows,
    )  # fmt: skip
    loops = ToolSpec(
        id="bulk:circular", title="Loop", description="A list in itself.", input_schema=ARGS,
        output_schema={"type": "object"}, run=circular,
    )  # fmt: skip

    class Bulk:
        @hookimpl
        def register_tool_families(self) -> list[ToolFamily]:
            odd = ToolSpec(
                id="bulk:tuple_keys", title="Odd", description="Not JSON.", input_schema=ARGS,
                output_schema={"type": "object"}, run=tuple_keys,
            )  # fmt: skip
            tools = (spec, loops, odd)
            return [ToolFamily(id="bulk", title="Bulk", description="Big.", tools=tools)]

    return Bulk()


def registry_with(max_result_bytes: int, events: list[str] | None = None) -> Registry:
    pm = build_plugin_manager(enabled=(), extra=[bulk_family(events)])
    return build_registry(pm, max_result_bytes=max_result_bytes)


def text_of(n: int, text: str = "x") -> str:
    return model_json({"rows": [{"id": i, "name": text} for i in range(n)]})


@pytest.mark.parametrize("n", [3, 5_000])  # checked inline, and in a worker thread
async def test_the_cap_is_the_json_the_model_reads_to_the_byte(
    tool_context: ToolContext, n: int
) -> None:
    exact = len(text_of(n))
    assert (await registry_with(exact).invoke_for_model("bulk:rows", tool_context, {"n": n})).text
    with pytest.raises(ToolResultTooLarge) as caught:
        await registry_with(exact - 1).invoke("bulk:rows", tool_context, {"n": n})
    assert caught.value.code == "TOOL_RESULT_TOO_LARGE"
    assert caught.value.details == {"tool": "bulk:rows", "max_bytes": exact - 1}


async def test_escapes_count_as_the_model_sees_them(tool_context: ToolContext) -> None:
    """'é' is 2 bytes of UTF-8 but 6 characters of the model's JSON (\\u00e9)."""
    text = "é" * 1000
    utf8 = len(json.dumps({"rows": [{"id": 0, "name": text}]}, ensure_ascii=False).encode())
    with pytest.raises(ToolResultTooLarge):
        await registry_with(utf8 + 100).invoke("bulk:rows", tool_context, {"n": 1, "text": text})


async def test_the_model_reads_a_typed_tool_error(tool_context: ToolContext) -> None:
    finished: list[tuple[Any, str | None]] = []

    async def context_for(tool_id: str) -> ToolContext:
        return tool_context

    async def started(tool_id: str, args: dict[str, Any]) -> None:
        return None

    async def done(tool_id: str, result: Any, error: str | None, ms: int) -> None:
        finished.append((result, error))

    hooks = RunHooks(context_for, started, done)
    reply = await run_tool_call(registry_with(1024), "bulk:rows", {"n": 1_000_000}, hooks)
    error = json.loads(reply)["error"]
    assert error["code"] == "TOOL_RESULT_TOO_LARGE"
    assert "1024 bytes" in error["message"]
    assert finished == [(None, f"TOOL_RESULT_TOO_LARGE: {error['message']}")]
    fits = await run_tool_call(registry_with(1024), "bulk:rows", {"n": 2}, hooks)
    assert fits == text_of(2)  # exactly the text that was measured


async def test_a_huge_result_is_refused_by_the_default_cap(tool_context: ToolContext) -> None:
    with pytest.raises(ToolResultTooLarge):
        await registry_with(DEFAULT_MAX_TOOL_RESULT_BYTES).invoke(
            "bulk:rows", tool_context, {"n": 1_000_000}
        )


async def test_a_circular_result_ends_as_too_large(tool_context: ToolContext) -> None:
    """Its JSON would never end: the floor passes the cap and the walk stops."""
    with pytest.raises(ToolResultTooLarge):
        await registry_with(DEFAULT_MAX_TOOL_RESULT_BYTES).invoke("bulk:circular", tool_context, {})


async def test_a_result_that_is_not_json_is_a_plugin_error(tool_context: ToolContext) -> None:
    with pytest.raises(PluginError, match="not JSON"):
        await registry_with(DEFAULT_MAX_TOOL_RESULT_BYTES).invoke(
            "bulk:tuple_keys", tool_context, {}
        )


async def heartbeat_during(call: Callable[[], Any], events: list[str]) -> None:
    """Run `call` while another coroutine on the same loop records a tick each time it runs."""
    finished = asyncio.Event()

    async def beat() -> None:
        while not finished.is_set():
            events.append("tick")
            await asyncio.sleep(0)

    beating = asyncio.create_task(beat())
    try:
        await call()
    except ToolResultTooLarge:
        events.append("refused")
    finally:
        events.append("done")
        finished.set()
        await beating


@pytest.mark.parametrize(
    ("n", "cap", "outcome"),
    [(30_000, DEFAULT_MAX_TOOL_RESULT_BYTES, "done"), (1_000_000, 4096, "refused")],
)
async def test_the_loop_keeps_running_while_a_big_result_is_checked(
    tool_context: ToolContext, n: int, cap: int, outcome: str
) -> None:
    """Between the tool's return and the end of the call (measuring, serialising, validating
    `n` rows), other coroutines on the loop still run."""
    events: list[str] = []
    registry = registry_with(cap, events)
    await heartbeat_during(lambda: registry.invoke("bulk:rows", tool_context, {"n": n}), events)
    returned, done = events.index("returned"), events.index("done")
    assert "tick" in events[returned + 1 : done], "the loop was blocked while checking"
    assert outcome in events


async def test_small_results_are_checked_inline(
    tool_context: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[object] = []
    real = asyncio.to_thread

    async def counting(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        threads.append(function)
        return await real(function, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counting)
    registry = registry_with(DEFAULT_MAX_TOOL_RESULT_BYTES)
    await registry.invoke("bulk:rows", tool_context, {"n": 10})
    assert threads == []
    await registry.invoke("bulk:rows", tool_context, {"n": 10_000})
    assert len(threads) == 1


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=30,
)


@given(JSON)
def test_the_floor_never_exceeds_the_real_size(value: Any) -> None:
    """A floor over the cap is what refuses a result without serialising it: it must hold."""
    assert size_floor(value, stop_above=10**9) <= len(model_json(value))


def test_small_means_few_values_and_little_text() -> None:
    assert is_small({"rows": [{"id": 1, "name": "x"}] * 100})
    assert not is_small({"rows": [{"id": 1, "name": "x"}] * 200})
    assert not is_small("x" * (64 * 1024 + 1))
    assert not is_small({"when": object()})  # made into text by default=str: size unknown


def test_the_floor_stops_walking_once_over_the_cap() -> None:
    shown: list[int] = []

    class Costly:
        def __str__(self) -> str:
            shown.append(1)
            return "x" * 10

    assert size_floor([Costly() for _ in range(10_000)], stop_above=100) > 100
    assert len(shown) < 20


def test_the_cap_is_a_setting() -> None:
    assert Settings.from_env({}).max_tool_result_bytes == DEFAULT_MAX_TOOL_RESULT_BYTES
    settings = Settings.from_env({"PASAR_MAX_TOOL_RESULT_BYTES": "65536"})
    assert settings.max_tool_result_bytes == 65_536
