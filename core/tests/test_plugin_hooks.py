"""The lifecycle hooks (`startup`, `shutdown`) and how every hook is called: each implementation
gets only the arguments it names, so a hook can gain arguments without breaking old plugins."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pluggy
import pytest
from pasar_core import hookspecs
from pasar_core.errors import PluginStartupFailed, StartupError
from pasar_core.hook_calls import call_implementation, implementations
from pasar_core.plugin_lifecycle import started_plugins
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import build_registry
from pasar_core.specs import ToolFamily

hookimpl = hookspecs.hookimpl
pytestmark = pytest.mark.anyio


def services(**family_plugins: str) -> Any:
    """What the lifecycle reads of `Services`: the extras, and which plugin owns each family."""
    registry = SimpleNamespace(family_plugins=family_plugins)
    return SimpleNamespace(extras={}, registry=registry)


def manager(**plugins: object) -> pluggy.PluginManager:
    """A fresh manager with `plugins` registered by name, in the order given."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name, plugin in plugins.items():
        pm.register(plugin, name=name)
    return pm


class Recorder:
    """Plugins that record their lifecycle calls in one shared list."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def plugin(self, name: str, *, fail: Exception | None = None) -> object:
        calls = self.calls

        class Plugin:
            @hookimpl
            async def startup(self, services: Any) -> None:  # an awaitable
                calls.append(f"start {name}")
                if fail is not None:
                    raise fail
                services.extras[f"{name}.client"] = name

            @hookimpl
            def shutdown(self, services: Any) -> None:  # a plain call
                calls.append(f"stop {name}")
                services.extras.pop(f"{name}.client", None)

        return Plugin()


async def test_startup_and_shutdown_run_in_order_and_share_clients_through_extras() -> None:
    recorder = Recorder()
    pm = manager(a=recorder.plugin("a"), b=recorder.plugin("b"), c=recorder.plugin("c"))
    held = services()
    async with started_plugins(pm, held):
        assert held.extras == {"a.client": "a", "b.client": "b", "c.client": "c"}
        # pluggy's call order: the last registered first
        assert recorder.calls == ["start c", "start b", "start a"]
    # the first started is the last stopped
    assert recorder.calls[3:] == ["stop a", "stop b", "stop c"]
    assert held.extras == {}


async def test_a_failing_startup_names_the_plugin_and_stops_the_started_ones() -> None:
    recorder = Recorder()
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(recorder.plugin("broken", fail=RuntimeError("no token")), name="broken")
    pm.register(recorder.plugin("fine"), name="fine")  # registered last: starts first
    held = services()
    with pytest.raises(PluginStartupFailed) as raised:
        async with started_plugins(pm, held):
            raise AssertionError("the body must not run")
    assert isinstance(raised.value, StartupError)
    assert raised.value.plugin == "broken"
    assert raised.value.message == "plugin 'broken' failed to start: RuntimeError: no token"
    assert raised.value.code == "PLUGIN_STARTUP_FAILED"
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert recorder.calls == ["start fine", "start broken", "stop fine"]
    assert held.extras == {}


async def test_a_failing_shutdown_is_logged_by_name_and_the_others_still_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopped: list[str] = []

    class Breaks:
        @hookimpl
        def shutdown(self) -> None:
            raise OSError("socket gone")

    class Stops:
        @hookimpl
        async def shutdown(self) -> None:
            stopped.append("stops")

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(Stops(), name="stops")
    pm.register(Breaks(), name="breaks")
    with caplog.at_level(logging.ERROR, logger="pasar.plugins"):
        async with started_plugins(pm, services()):
            pass
    assert stopped == ["stops"]
    assert "plugin 'breaks' failed to shut down: OSError: socket gone" in caplog.text


async def test_an_implementation_naming_fewer_arguments_is_called_without_them() -> None:
    seen: list[str] = []

    class NoArguments:
        @hookimpl
        def startup(self) -> None:  # the spec offers `services`; this plugin needs none
            seen.append("startup")

    pm = build_plugin_manager(enabled=(), extra=[NoArguments()])
    async with started_plugins(pm, services()):
        assert seen == ["startup"]


class FutureSpecs:
    """The contract of a later release, where two hooks gained an argument."""

    @hookspecs.hookspec
    def register_tool_families(self, settings: Any) -> Any:
        """Gained `settings`."""

    @hookspecs.hookspec
    def startup(self, services: Any, settings: Any) -> Any:
        """Gained `settings`."""


FAMILY = ToolFamily(id="old", title="Old", description="Written for the first release.", tools=())


class OldPlugin:
    """Written against today's contract: knows neither new argument."""

    started: list[object] = []

    @hookimpl
    def register_tool_families(self) -> list[ToolFamily]:
        return [FAMILY]

    @hookimpl
    def startup(self, services: Any) -> None:
        self.started.append(services)


class NewPlugin:
    seen: list[object] = []

    @hookimpl
    def startup(self, settings: Any) -> None:  # names only the new argument
        self.seen.append(settings)


def test_a_hook_gaining_an_argument_does_not_break_an_old_plugin() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(FutureSpecs)
    old, new = OldPlugin(), NewPlugin()
    pm.register(old, name="old")
    pm.register(new, name="new")
    held, settings = services(), object()
    for impl in implementations(pm, "startup"):
        call_implementation(impl, {"services": held, "settings": settings})
    assert old.started == [held]
    assert new.seen == [settings]
    [returned] = [call_implementation(impl, {"settings": settings})
                  for impl in implementations(pm, "register_tool_families")]  # fmt: skip
    assert returned == [FAMILY]
    # pluggy's own call does the same: the registry and the lifecycle match it
    assert pm.hook.register_tool_families(settings=settings) == [[FAMILY]]


def test_the_registry_calls_registration_hooks_through_the_named_arguments() -> None:
    later = ToolFamily(id="later", title="Later", description="Reads the new argument.", tools=())
    seen: list[object] = []

    class Registers:
        @hookimpl
        def register_tool_families(self, settings: Any) -> list[ToolFamily]:
            seen.append(settings)
            return [later]

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(FutureSpecs)
    pm.register(OldPlugin(), name="old")
    pm.register(Registers(), name="registers")
    settings = object()
    registry = build_registry(pm, hook_arguments={"settings": settings})
    assert set(registry.families) == {"old", "later"}
    assert seen == [settings]
    assert registry.family_plugins == {"old": "old", "later": "registers"}


def test_an_implementation_naming_an_unknown_argument_is_refused_at_registration() -> None:
    class Misnamed:
        @hookimpl
        def startup(self, servises: Any) -> None:
            raise AssertionError("never called")

    with pytest.raises(pluggy.PluginValidationError, match="servises"):
        build_plugin_manager(enabled=(), extra=[Misnamed()])


class Writes:
    """A plugin whose `startup` sets one `services.extras` key (and whose `shutdown` counts)."""

    def __init__(self, key: str) -> None:
        self.key, self.stopped = key, 0

    @hookimpl
    def startup(self, services: Any) -> None:
        services.extras[self.key] = object()

    @hookimpl
    def shutdown(self) -> None:
        self.stopped += 1


async def test_a_plugin_writes_extras_under_its_name_and_its_families() -> None:
    pm = manager(web=Writes("web.resolver"), pasar_google=Writes("google_workspace.http_client"))
    held = services(google_workspace="pasar_google", web="web")
    async with started_plugins(pm, held):
        assert set(held.extras) == {"web.resolver", "google_workspace.http_client"}


@pytest.mark.parametrize("key", ["web.resolver", "net.allow_bound", "nodot", "fine2.client"])
async def test_a_startup_writing_another_namespace_refuses_to_boot(key: str) -> None:
    fine, hostile = Writes("fine.client"), Writes(key)
    pm = manager(hostile=hostile, fine=fine)  # fine starts first
    held = services(web="web", fine="fine")
    with pytest.raises(PluginStartupFailed) as raised:
        async with started_plugins(pm, held):
            raise AssertionError("the body must not run")
    assert raised.value.plugin == "hostile"
    assert raised.value.message == (
        f"plugin 'hostile' failed to start: it set services.extras keys {key!r} outside its "
        "namespaces (hostile.)"
    )
    assert (fine.stopped, hostile.stopped) == (1, 1)  # both started, both stopped


async def test_replacing_or_removing_another_plugins_extra_refuses_to_boot() -> None:
    class Replaces:
        @hookimpl
        def startup(self, services: Any) -> None:
            services.extras["fine.client"] = "mine now"

    class Removes:
        @hookimpl
        def startup(self, services: Any) -> None:
            services.extras.pop("fine.client")

    for hostile in (Replaces(), Removes()):
        pm = manager(hostile=hostile, fine=Writes("fine.client"))
        with pytest.raises(PluginStartupFailed, match=r"'fine\.client' outside its namespaces"):
            async with started_plugins(pm, services(fine="fine")):
                raise AssertionError("the body must not run")
