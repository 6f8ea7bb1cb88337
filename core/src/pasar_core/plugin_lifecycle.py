"""The plugins' `startup` and `shutdown` hooks around a process's life (server or worker).

A plugin that owns shared clients makes them in `startup(services)` and puts them in
`services.extras` (keys `<plugin>.<name>`), where every tool context finds them
(`ToolContext.extras`), and closes them in `shutdown(services)`. A plugin's namespaces are its
plugin name and the ids of the tool families it registers: a `startup` that sets, replaces or
removes a key outside them (another plugin's client, `web.resolver`) refuses start-up.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

import pluggy

from pasar_core.errors import ExtrasOutsideNamespace, PluginStartupFailed
from pasar_core.hook_calls import await_me_maybe, call_implementation, implementations

if TYPE_CHECKING:
    from pasar_core.services import Services

log = logging.getLogger("pasar.plugins")


async def stop_plugins(
    pm: pluggy.PluginManager, services: Services, *, only: set[str] | None = None
) -> None:
    """Every `shutdown` (of the plugins in `only`, when given), the first started stopped last.
    One plugin's failure is logged with its name and does not keep the others from stopping."""
    arguments = {"services": services}
    for impl in reversed(implementations(pm, "shutdown")):
        if only is not None and impl.plugin_name not in only:
            continue
        try:
            await await_me_maybe(call_implementation(impl, arguments))
        except Exception as error:  # a plugin's bug must not stop the others' shutdown
            log.error("plugin %r failed to shut down: %s: %s",
                      impl.plugin_name, type(error).__name__, error)  # fmt: skip


def namespaces(services: Services, plugin: str) -> list[str]:
    """The `services.extras` key prefixes `plugin` may write: its name and its families' ids."""
    families = services.registry.family_plugins
    return sorted({plugin, *(family for family, owner in families.items() if owner == plugin)})


def foreign_changes(
    before: Mapping[str, object], after: Mapping[str, object], allowed: list[str]
) -> list[str]:
    """The keys set, replaced or removed between `before` and `after` outside `allowed`."""
    changed = {key for key in before.keys() | after.keys()
               if key not in before or key not in after or before[key] is not after[key]}  # fmt: skip
    return sorted(key for key in changed if key.split(".", 1)[0] not in allowed)


@contextlib.asynccontextmanager
async def started_plugins(pm: pluggy.PluginManager, services: Services) -> AsyncIterator[None]:
    """Every plugin's `startup` (awaited when it returns an awaitable), and on exit every
    `shutdown`. A `startup` that raises, or that writes extras outside its namespaces, refuses
    start-up with `PluginStartupFailed` naming the plugin, after the plugins already started
    (that one included when only its extras were wrong) were shut down."""
    arguments = {"services": services}
    started: set[str] = set()
    for impl in implementations(pm, "startup"):
        before = dict(services.extras)
        try:
            await await_me_maybe(call_implementation(impl, arguments))
        except Exception as error:
            await stop_plugins(pm, services, only=started)
            raise PluginStartupFailed(impl.plugin_name, error) from error
        started.add(impl.plugin_name)
        allowed = namespaces(services, impl.plugin_name)
        foreign = foreign_changes(before, services.extras, allowed)
        if foreign:
            await stop_plugins(pm, services, only=started)
            outside = ExtrasOutsideNamespace(foreign, allowed)
            raise PluginStartupFailed(impl.plugin_name, outside) from outside
    try:
        yield
    finally:
        await stop_plugins(pm, services)
