"""The operator bounds what an agent's allow_hosts may open (`ctx.extras["net.allow_bound"]`)."""

from __future__ import annotations

import dataclasses

import pytest
from pasar_core.errors import ToolError
from pasar_core.net.guard import ALLOW_BOUND_EXTRA
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import build_registry
from pasar_core.specs import ToolContext

pytestmark = pytest.mark.anyio


@pytest.fixture
def registry():
    return build_registry(build_plugin_manager(enabled=("web",)))


async def test_entries_outside_the_bound_are_refused_before_any_connection(
    registry, tool_context: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_connect(*args: object, **kwargs: object) -> None:
        raise AssertionError("nothing may be contacted")

    monkeypatch.setattr("socket.socket.connect", no_connect)
    ctx = dataclasses.replace(
        tool_context,
        settings={"allow_hosts": ["10.1.2.3", "127.0.0.1:8080"]},
        extras={ALLOW_BOUND_EXTRA: ("127.0.0.1",)},
    )
    with pytest.raises(ToolError, match=r"PASAR_ALLOW_PRIVATE_HOSTS\): 10\.1\.2\.3"):
        await registry.invoke("web:fetch", ctx, {"url": "http://10.1.2.3/"})


async def test_an_empty_bound_opens_nothing(registry, tool_context: ToolContext) -> None:
    ctx = dataclasses.replace(
        tool_context, settings={"allow_hosts": ["127.0.0.1"]}, extras={ALLOW_BOUND_EXTRA: ()}
    )
    with pytest.raises(ToolError, match=r"PASAR_ALLOW_PRIVATE_HOSTS\): 127\.0\.0\.1"):
        await registry.invoke("http:get", ctx, {"url": "http://127.0.0.1:9/"})
