"""Start-up stays cheap: `import pasar` and `pasar --help` load neither the app nor its heavy
libraries (GraphQL, LangChain, SQLAlchemy); the app is imported when a command needs it, and
the app with its plugins loads no LangChain until it serves (then a thread loads it for runs)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "strawberry", "graphql", "langchain", "langchain_core", "langgraph",
         "starlette", "asyncpg", "pasar.app", "pasar_graphql")  # fmt: skip

REPORT = """
import json, sys
{setup}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def loaded_after(setup: str) -> list[str]:
    code = REPORT.format(setup=setup, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    "setup",
    [
        "import pasar",
        "import pasar.cli",
        # click runs --help and exits: report from an atexit hook instead
        "import atexit\natexit.register(lambda: print(json.dumps(sorted(m for m in "
        f"{HEAVY!r} if m in sys.modules))))\nsys.argv = ['pasar', '--help']\n"
        "import pasar.cli\ntry:\n    pasar.cli.main()\nexcept SystemExit:\n    pass",
    ],
)
def test_nothing_heavy_is_imported(setup: str) -> None:
    assert loaded_after(setup) == []


def test_the_app_is_still_reachable_from_the_package() -> None:
    assert loaded_after("import pasar\npasar.create_app") != []
    import pasar
    from pasar.app import create_app

    assert pasar.create_app is create_app


RUN_LIBRARIES = ("langchain", "langchain_core", "langgraph", "langsmith", "pasar_core.executions.runner",
                 "pasar_core.agents.builder", "pasar_core.models.scripted")  # fmt: skip

APP_BUILT = """
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import build_registry
from pasar_core.settings import Settings
from pasar.app import create_app
import pasar.asgi, pasar.lifecycle
create_app(Settings(secret_key="s" * 32))
registry = build_registry(build_plugin_manager())
assert "scripted" in registry.llm_providers and registry.tools
"""


def run_libraries_after(setup: str) -> list[str]:
    code = REPORT.format(setup=setup, heavy=RUN_LIBRARIES)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_the_app_and_its_plugins_load_no_langchain() -> None:
    assert run_libraries_after(APP_BUILT) == []


def test_serving_loads_the_run_modules_off_the_loop_and_freezes_them() -> None:
    setup = APP_BUILT + (
        "import asyncio, gc\n"
        "from pasar.app import load_run_modules\n"
        "before = gc.get_freeze_count()\n"
        "asyncio.run(load_run_modules())\n"
        "assert gc.get_freeze_count() > before\n"
    )
    # a model provider's own module loads when an agent first uses it
    assert run_libraries_after(setup) == sorted(set(RUN_LIBRARIES) - {"pasar_core.models.scripted"})
