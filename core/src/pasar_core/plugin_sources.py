"""One plugin alone in a plugin manager, found the way start-up finds plugins (entry points of
the group `pasar`): from an installed entry point or distribution, a wheel, a source directory
or a module object. What cannot be loaded is reported as a problem, not raised."""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import Distribution, EntryPoint, distribution, distributions, entry_points
from pathlib import Path

import pluggy

from pasar_core import hookspecs
from pasar_core.contract import ContractProblem, invalid
from pasar_core.errors import PluginError, PluginNotFound
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import registration_problems

GROUP = hookspecs.PROJECT_NAME


@dataclass(frozen=True, slots=True)
class LoadedPlugins:
    """A manager holding only the target's plugins, and what went wrong loading them."""

    pm: pluggy.PluginManager
    names: tuple[str, ...]
    problems: tuple[ContractProblem, ...] = field(default=())

    def contract_problems(self) -> list[ContractProblem]:
        """Loading problems, then everything start-up's registry check refuses."""
        return [*self.problems, *registration_problems(self.pm)]


def plugin_manager_for(plugin: object | str) -> pluggy.PluginManager:
    """As start-up builds it, with only `plugin`: an installed entry-point name, or a module
    (or any object with hook implementations)."""
    if isinstance(plugin, str):
        return build_plugin_manager(enabled=(plugin,))
    return build_plugin_manager(enabled=(), extra=[plugin])


def load_target(target: str) -> LoadedPlugins:
    """`target` is a wheel, a source directory with a pyproject.toml, an installed entry-point
    name or an installed distribution name. Raises PluginNotFound when it is none of these."""
    path = Path(target)
    if path.suffix == ".whl" and path.is_file():
        return load_entry_points(_wheel_entry_points(path))
    if path.is_dir():
        return load_entry_points(_source_entry_points(path))
    installed = tuple(entry_points(group=GROUP, name=target))
    if installed:
        return load_entry_points(installed)
    try:
        dist = distribution(target)
    except Exception:  # PackageNotFoundError, or an invalid name
        raise PluginNotFound(target) from None
    return load_entry_points(_pasar_entry_points(dist, target))


def load_entry_points(eps: Iterable[EntryPoint]) -> LoadedPlugins:
    """Load and register each entry point as `load_setuptools_entrypoints` does, keeping the
    import and hook-validation failures as problems."""
    pm = build_plugin_manager(enabled=())
    names: list[str] = []
    problems: list[ContractProblem] = []
    for ep in eps:
        names.append(ep.name)
        try:
            plugin = ep.load()
        except Exception as error:
            problems.append(
                ContractProblem(
                    PluginError.code,
                    f"plugin {ep.name!r}: importing {ep.value} raised "
                    f"{type(error).__name__}: {error}",
                )
            )
            continue
        try:
            pm.register(plugin, name=ep.name)
        except pluggy.PluginValidationError as error:
            problems.append(invalid(f"plugin {ep.name!r}: {error}"))
            continue
        if not pm.get_hookcallers(plugin):
            problems.append(invalid(f"plugin {ep.name!r} implements no pasar hook (@hookimpl)"))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        problems.append(invalid(f"plugin {pm.get_name(error.plugin)!r}: {error}"))
    return LoadedPlugins(pm=pm, names=tuple(names), problems=tuple(problems))


def _pasar_entry_points(dist: Distribution, where: str) -> tuple[EntryPoint, ...]:
    found = tuple(ep for ep in dist.entry_points if ep.group == GROUP)
    if not found:
        raise PluginNotFound(where, f"declares no entry point in the group {GROUP!r}")
    return found


def _wheel_entry_points(wheel: Path) -> tuple[EntryPoint, ...]:
    """The wheel goes first on sys.path (pure-Python wheels import from the zip)."""
    dists = list(distributions(path=[str(wheel)]))
    if not dists:
        raise PluginNotFound(str(wheel), "is not a wheel (no .dist-info inside)")
    sys.path.insert(0, str(wheel))
    return _pasar_entry_points(dists[0], str(wheel))


def _source_entry_points(root: Path) -> tuple[EntryPoint, ...]:
    """A source tree: the entry points its pyproject.toml declares, imported from `src/` (or
    the directory itself) placed first on sys.path."""
    pyproject = root / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text()).get("project", {})
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PluginNotFound(str(root), f"no readable pyproject.toml ({error})") from None
    declared = project.get("entry-points", {}).get(GROUP, {})
    if not isinstance(declared, dict) or not declared:
        raise PluginNotFound(str(root), f"pyproject.toml declares no {GROUP!r} entry point")
    source = root / "src" if (root / "src").is_dir() else root
    sys.path.insert(0, str(source.resolve()))
    return tuple(EntryPoint(str(name), str(value), GROUP) for name, value in declared.items())
