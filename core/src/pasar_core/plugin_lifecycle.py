"""The plugins' `startup` and `shutdown` hooks around a process's life (server or worker).

A plugin that owns shared clients makes them in `startup(services)` and puts them in
`services.extras` (keys `<plugin>.<name>`), where every tool context finds them
(`ToolContext.extras`), and closes them in `shutdown(services)`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pluggy

from pasar_core.errors import PluginStartupFailed
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


@contextlib.asynccontextmanager
async def started_plugins(pm: pluggy.PluginManager, services: Services) -> AsyncIterator[None]:
    """Every plugin's `startup` (awaited when it returns an awaitable), and on exit every
    `shutdown`. A `startup` that raises refuses start-up with `PluginStartupFailed` naming the
    plugin, after the plugins already started were shut down."""
    arguments = {"services": services}
    started: set[str] = set()
    for impl in implementations(pm, "startup"):
        try:
            await await_me_maybe(call_implementation(impl, arguments))
        except Exception as error:
            await stop_plugins(pm, services, only=started)
            raise PluginStartupFailed(impl.plugin_name, error) from error
        started.add(impl.plugin_name)
    try:
        yield
    finally:
        await stop_plugins(pm, services)
