"""Every installed plugin, found through its entry point, follows the contract."""

from __future__ import annotations

import inspect
import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from pasar_core import hookspecs
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import build_registry
from pasar_core.testing import assert_follows_contract

PLUGIN_NAMES = sorted(ep.name for ep in entry_points(group="pasar"))
DOCS = Path(__file__).parents[2] / "docs" / "plugins.md"
HOOKS = sorted(name for name, value in vars(hookspecs).items() if hasattr(value, "pasar_spec"))


def test_the_built_in_plugins_are_installed() -> None:
    assert "files" in PLUGIN_NAMES


@pytest.mark.parametrize("name", PLUGIN_NAMES)
def test_plugin_loads_alone_and_follows_the_contract(name: str) -> None:
    assert_follows_contract(name)
    registry = build_registry(build_plugin_manager(enabled=(name,)))
    registered = (
        registry.families
        or registry.llm_providers
        or registry.embedding_providers
        or registry.strategies
    )
    assert registered, f"plugin {name!r} registers nothing"


def test_all_plugins_load_together_without_clashes() -> None:
    pm = build_plugin_manager()
    registry = build_registry(pm)
    assert {name for name, _ in pm.list_name_plugin()} >= set(PLUGIN_NAMES)
    assert {"files", "postgres", "web"} <= set(registry.family_plugins.values())
    assert "scripted" in registry.llm_providers


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_signature(hook: str) -> None:
    signature = f"{hook}{inspect.signature(getattr(hookspecs, hook))}"
    text = DOCS.read_text()
    assert re.search(rf"^### `{re.escape(hook)}\(", text, re.M), f"docs/plugins.md lacks {hook}"
    assert signature.replace("'", "") in text.replace("'", ""), (
        f"docs show another signature than {signature}"
    )
    section = re.split(rf"^### `{re.escape(hook)}\(", text, flags=re.M)[1].split("\n## ")[0]
    section = section.split("\n### ")[0]
    assert f"@hookimpl\ndef {hook}(" in section or f"@hookimpl\nasync def {hook}(" in section, (
        f"docs/plugins.md has no example implementing {hook}"
    )


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook: str) -> None:
    tests = Path(__file__).parents[2]
    sources = [p.read_text() for p in tests.glob("**/tests/**/*.py") if ".venv" not in p.parts]
    sources += [p.read_text() for p in (tests / "tests").glob("**/*.py")]
    using = [s for s in sources if f"def {hook}(" in s and "hookimpl" in s]
    assert using, f"no test implements the {hook} hook"
