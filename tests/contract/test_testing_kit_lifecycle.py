"""`pasar_plugin(plugin).started()`: the testing kit runs a plugin's `startup` and `shutdown`
hooks as the server does, so a plugin that owns a shared client is tested with it."""

from __future__ import annotations

from typing import Any

import pytest
from pasar_core import Effect, hookimpl
from pasar_core.errors import PluginError, PluginStartupFailed
from pasar_core.specs import ToolContext, ToolFamily, ToolSpec
from pasar_core.testing import PluginUnderTest

CLIENT = "counter.client"


class Client:
    def __init__(self) -> None:
        self.calls = 0
        self.closed = False


async def count(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    client = ctx.extras[CLIENT]
    client.calls += 1
    return {"calls": client.calls}


SCHEMA = {"type": "object", "properties": {}, "additionalProperties": False}
OUTPUT = {"type": "object", "properties": {"calls": {"type": "integer"}}, "required": ["calls"]}


class Counter:
    """A plugin that opens one client at start-up and closes it at shut-down."""

    __name__ = "counter"

    def __init__(self) -> None:
        self.opened: list[Client] = []

    @hookimpl
    def register_tool_families(self) -> list[ToolFamily]:
        tool = ToolSpec(id="counter:count", title="Count", description="Counts its calls.",
                        input_schema=SCHEMA, output_schema=OUTPUT, effect=Effect.READ, run=count)  # fmt: skip
        return [ToolFamily(id="counter", title="Counter", description="Counts.", tools=(tool,))]

    @hookimpl
    async def startup(self, services: Any) -> None:
        client = Client()
        self.opened.append(client)
        services.extras[CLIENT] = client

    @hookimpl
    def shutdown(self, services: Any) -> None:
        services.extras.pop(CLIENT).closed = True


class Trespasser:
    __name__ = "trespasser"

    @hookimpl
    def startup(self, services: Any) -> None:
        services.extras["web.resolver"] = object()


@pytest.mark.anyio
async def test_started_runs_startup_hands_its_extras_to_tools_and_shuts_down(
    pasar_plugin: Any,
) -> None:
    plugin = Counter()
    under_test: PluginUnderTest = pasar_plugin(plugin)
    async with under_test.started() as started:
        assert (await started.call("counter:count", {}))["calls"] == 1
        assert (await started.call("counter:count", {}))["calls"] == 2
        [client] = plugin.opened
        assert client.closed is False
    assert plugin.opened[0].closed is True  # shut down
    with pytest.raises(PluginError, match="raised KeyError"):  # not started: no client
        await under_test.call("counter:count", {})


@pytest.mark.anyio
async def test_started_refuses_a_startup_outside_its_namespaces(pasar_plugin: Any) -> None:
    with pytest.raises(PluginStartupFailed, match="'trespasser' failed to start"):
        async with pasar_plugin(Trespasser()).started():
            raise AssertionError("must not start")
