"""Plugins add commands to the command line (`register_commands(cli)`): the Google plugin's
emulator comes from the plugin, loaded only when a command the core lacks is asked for."""

from __future__ import annotations

import subprocess
import sys

import click
import pasar_google_workspace
import pluggy
import pytest
from click.testing import CliRunner
from pasar_core import hookspecs
from pasar_core.plugins import build_plugin_manager

from pasar.cli_plugin_commands import PluginCommandGroup, add_plugin_commands

hookimpl = hookspecs.hookimpl


def test_register_commands_adds_a_plugins_commands_when_one_is_asked_for() -> None:
    class Commands:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            @cli.command("hello")
            @click.argument("name")
            def hello(name: str) -> None:
                click.echo(f"hello {name}")

    @click.group(cls=PluginCommandGroup, lists_plugins=False)
    def root() -> None:
        """A command line."""

    pm = build_plugin_manager(enabled=(), extra=[Commands()])
    add_plugin_commands(root, pm)
    result = CliRunner().invoke(root, ["hello", "ada"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello ada\n"


def test_a_plugin_failing_to_add_commands_is_named() -> None:
    class Broken:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            raise ValueError("bad option")

    root = click.Group("root")
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(Broken(), name="broken")
    with pytest.raises(click.ClickException, match="plugin 'broken' failed to add its commands"):
        add_plugin_commands(root, pm)


def test_the_google_emulator_command_comes_from_the_google_plugin() -> None:
    @click.group(cls=PluginCommandGroup, lists_plugins=False)
    def root() -> None:
        """A command line without a dev group."""

    add_plugin_commands(root, build_plugin_manager(enabled=(), extra=[pasar_google_workspace]))
    dev = root.commands["dev"]
    assert isinstance(dev, click.Group)
    assert "google-emulator" in dev.commands
    result = CliRunner().invoke(root, ["dev", "google-emulator", "--help"])
    assert result.exit_code == 0, result.output
    assert "--auto-consent" in result.output


def test_pasar_dev_lists_the_plugins_commands_and_pasar_help_loads_no_plugin() -> None:
    dev = subprocess.run([sys.executable, "-m", "pasar", "dev", "--help"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert "google-emulator" in dev.stdout
    code = (
        "import sys\nsys.argv = ['pasar', '--help']\nimport pasar.cli\ntry:\n"
        "    pasar.cli.main()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', 'pasar_google_workspace' in sys.modules)"
    )
    top = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED False" in top.stdout
    assert "register_commands" in top.stdout  # the help says where plugins' commands are
