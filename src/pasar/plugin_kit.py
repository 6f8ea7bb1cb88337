"""`pasar plugin new`: the files of a ready-to-publish plugin package (one family, one tool,
tests that pass as generated, a README), written from templates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from string import Template

from pasar_core.errors import BadRequest

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*([_-][a-z0-9]+)*$")


class PluginNameInvalid(BadRequest):
    code = "PLUGIN_NAME_INVALID"


class PluginDirNotEmpty(BadRequest):
    code = "PLUGIN_DIR_NOT_EMPTY"


@dataclass(frozen=True, slots=True)
class PluginNames:
    family: str  # family id, entry-point name and tool prefix: acme_weather
    module: str  # import name: pasar_acme_weather
    distribution: str  # what pip installs: pasar-acme-weather
    title: str

    @classmethod
    def of(cls, name: str) -> PluginNames:
        bare = re.sub(r"^pasar[-_]", "", name)
        if not NAME_PATTERN.match(bare):
            raise PluginNameInvalid(
                f"plugin name {name!r} must be lowercase letters and digits, words joined by - or _"
            )
        family = bare.replace("-", "_")
        return cls(
            family=family,
            module=f"pasar_{family}",
            distribution=f"pasar-{family.replace('_', '-')}",
            title=family.replace("_", " ").title(),
        )


def core_requirement(core_version: str | None = None) -> str:
    """`pasar-core` within its compatibility promise: the same major version (the same minor
    version before 1.0), at least the one this kit came with."""
    major, minor, *_ = (int(part) for part in (core_version or version("pasar-core")).split("."))
    upper = f"{major + 1}" if major else f"0.{minor + 1}"
    return f"pasar-core>={major}.{minor},<{upper}"


PYPROJECT = """\
[project]
name = "$distribution"
version = "0.1.0"
description = "$title tools for pasar."
readme = "README.md"
requires-python = ">=3.11"
license = "Apache-2.0"
dependencies = ["$core_requirement"]

[project.entry-points.pasar]
$family = "$module"

[dependency-groups]
dev = ["pytest>=8.3"]

[build-system]
requires = ["hatchling>=1.26"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/$module"]

[tool.pytest.ini_options]
addopts = "--strict-config --strict-markers"
testpaths = ["tests"]
pythonpath = ["src"]
"""

PLUGIN = '''\
"""$title tools for pasar: one family, registered through the `pasar` entry point."""

from __future__ import annotations

from typing import Any

from pasar_core import Effect, ToolContext, ToolFamily, ToolSpec, hookimpl


async def greet(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    # Only called with arguments that fit input_schema; what it returns must fit output_schema.
    return {"greeting": f"Hello, {args['name']}!"}


GREET = ToolSpec(
    id="$family:greet",  # service:action; the model sees it as ${family}_greet
    title="Greet",
    description="Greets someone by name.",  # what the agent's model reads
    input_schema={
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100}},
        "required": ["name"],
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "properties": {"greeting": {"type": "string"}},
        "required": ["greeting"],
    },
    effect=Effect.READ,  # read | write | send | destructive: what approval rules look at
    # OAuth scopes the tool needs; a tool with scopes names its auth_provider (docs/plugins.md).
    scopes=frozenset(),
    timeout_s=10.0,
    run=greet,
)

$constant = ToolFamily(
    id="$family",
    title="$title",
    description="$title tools.",
    tools=(GREET,),
)


@hookimpl
def register_tool_families() -> list[ToolFamily]:
    return [$constant]
'''

TESTS = '''\
"""The plugin as the server loads it: the contract start-up checks, and its tool called
through pasar's validation (fixtures from pasar_core.testing)."""

from __future__ import annotations

import pytest
from pasar_core.errors import ToolInputInvalid
from pasar_core.testing import assert_follows_contract

import $module


def test_follows_the_contract() -> None:
    assert_follows_contract($module)


@pytest.mark.anyio
async def test_greets(pasar_plugin) -> None:
    plugin = pasar_plugin($module)
    assert await plugin.call("$family:greet", {"name": "Ada"}) == {"greeting": "Hello, Ada!"}


@pytest.mark.anyio
async def test_refuses_input_outside_the_schema(pasar_plugin) -> None:
    plugin = pasar_plugin($module)
    with pytest.raises(ToolInputInvalid):
        await plugin.call("$family:greet", {"name": ""})
'''

README = """\
# $distribution

$title tools for [pasar](https://github.com/pasar/pasar): the family `$family` with the tool
`$family:greet`.

## Install into a pasar deployment

```bash
uv pip install $distribution      # in the server's environment, then restart the server
uv run pasar plugins list         # shows $family and its tools
```

## Develop

```bash
uv venv && uv pip install -e . pytest
uv run pytest                     # the contract check and the tool's tests
pasar plugins check .             # with pasar installed: the checks the server runs at start-up
```

Tools, schemas, effects and scopes are described in pasar's docs/plugins.md.

## Publish

```bash
uv build                          # dist/*.whl and dist/*.tar.gz
uv publish                        # or: twine upload dist/*
```

This package depends on `$core_requirement`: pasar's hooks only ever gain arguments (a hook
implementation takes just the arguments it names), so a plugin keeps working across
`pasar-core` releases within that range.
"""

GITIGNORE = "__pycache__/\n*.egg-info/\ndist/\n.venv/\n.pytest_cache/\n"


def plugin_files(names: PluginNames, requirement: str) -> dict[str, str]:
    """Relative path -> text of every file of the new package."""
    values = {
        "family": names.family,
        "module": names.module,
        "distribution": names.distribution,
        "title": names.title,
        "constant": names.family.upper(),
        "core_requirement": requirement,
    }
    templates = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        ".gitignore": GITIGNORE,
        f"src/{names.module}/__init__.py": PLUGIN,
        "tests/test_plugin.py": TESTS,
    }
    return {path: Template(text).substitute(values) for path, text in templates.items()}


def write_plugin(name: str, directory: Path | None = None) -> tuple[PluginNames, Path]:
    """Write the package into `directory` (default ./<distribution>), which must be empty."""
    names = PluginNames.of(name)
    root = directory or Path(names.distribution)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise PluginDirNotEmpty(f"{root} exists and is not an empty directory")
    for path, text in plugin_files(names, core_requirement()).items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return names, root
