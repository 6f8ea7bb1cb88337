"""`pasar plugin new` (the publisher kit) and `pasar plugins check` (the contract start-up
enforces, run on a source directory, a wheel or an installed plugin)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pasar.cli_support import emit, friendly_errors, json_flag


@click.group("plugin")
def plugin() -> None:
    """Write a plugin: the publisher kit."""


@plugin.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the package (default ./pasar-NAME; must be empty).",
)
@json_flag
@friendly_errors
def plugin_new(name: str, directory: Path | None, as_json: bool) -> None:
    """Create a ready-to-publish plugin package: pyproject with the `pasar` entry point, a
    family with one tool, tests that pass as generated, a README."""
    from pasar.plugin_kit import write_plugin

    names, root = write_plugin(name, directory)
    emit(as_json, {"distribution": names.distribution, "family": names.family,
                   "directory": str(root)},
         f"created {names.distribution} in {root} (family {names.family!r})",
         f"  next: cd {root} && pytest && pasar plugins check .")  # fmt: skip


@click.command("check")
@click.argument("target", metavar="PATH_OR_NAME")
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
@friendly_errors
def plugins_check(target: str, as_json: bool) -> None:
    """Check a plugin against the contract start-up enforces: a source directory, a wheel, or
    an installed entry-point or distribution name. One line per problem; exit 1 if any."""
    from pasar_core.plugin_sources import load_target

    loaded = load_target(target)
    problems = loaded.contract_problems()
    if as_json:
        rows = [{"code": p.code, "message": p.message} for p in problems]
        click.echo(json.dumps({"plugins": list(loaded.names), "problems": rows}, indent=2))
    else:
        for problem in problems:
            click.echo(str(problem))
        if not problems:
            click.echo(f"{', '.join(loaded.names)}: follows the plugin contract")
    if problems:
        raise click.exceptions.Exit(1)
