"""Build the plugin manager: entry points of the group `pasar`, plus explicit extras."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import pluggy

from pasar_core import hookspecs
from pasar_core.errors import PluginNotFound


def build_plugin_manager(
    *, enabled: Collection[str] | None = None, extra: Iterable[object] = ()
) -> pluggy.PluginManager:
    """A fresh manager. `enabled=None` loads every installed plugin; `()` loads none."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if enabled is None:
        pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
    for name in enabled or ():
        if not pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME, name=name):
            raise PluginNotFound(name)
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    return pm


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None


def describe_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Name, distribution and version of each registered plugin (entry points carry the dist)."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if name is None or plugin is None:
            continue
        dist = dists.get(id(plugin))
        infos.append(
            PluginInfo(
                name=name,
                distribution=dist.project_name if dist else None,
                version=dist.version if dist else None,
            )
        )
    return sorted(infos, key=lambda info: info.name)
