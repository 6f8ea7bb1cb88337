"""Plugins' commands (`register_commands(cli)`), loaded only when the command line needs them.

Loading plugins imports them (and their libraries), so `pasar --help` and the built-in commands
never do: the top-level group loads them when asked for a command it does not have, and a
built-in group (such as `dev`) also when its help lists its commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import pluggy


def add_plugin_commands(root: click.Group, pm: pluggy.PluginManager | None = None) -> None:
    """Each plugin's `register_commands(cli=root)` (the installed ones, or those of `pm`), once
    per command line."""
    if getattr(root, "plugin_commands_loaded", False):
        return
    root.plugin_commands_loaded = True  # type: ignore[attr-defined]
    from pasar_core.errors import PasarError
    from pasar_core.hook_calls import call_implementation, implementations
    from pasar_core.plugins import build_plugin_manager
    from pasar_core.settings import Settings

    try:
        pm = pm or build_plugin_manager(enabled=Settings.from_env().enabled_plugins)
    except PasarError as error:
        raise click.ClickException(f"plugins' commands are unavailable: {error.message}") from None
    for impl in reversed(implementations(pm, "register_commands")):  # registration order
        try:
            call_implementation(impl, {"cli": root})
        except Exception as error:
            raise click.ClickException(
                f"plugin {impl.plugin_name!r} failed to add its commands: "
                f"{type(error).__name__}: {error}"
            ) from None


class PluginCommandGroup(click.Group):
    """A group whose missing commands may come from plugins (see the module's docstring)."""

    def __init__(self, *args: Any, lists_plugins: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lists_plugins = lists_plugins

    def _root(self, ctx: click.Context) -> click.Group:
        root = ctx.find_root().command
        return root if isinstance(root, click.Group) else self

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None:
            add_plugin_commands(self._root(ctx))
            found = super().get_command(ctx, cmd_name)
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        if self.lists_plugins:
            add_plugin_commands(self._root(ctx))
        return super().list_commands(ctx)
