"""Start-up stays cheap: `import pasar` and `pasar --help` load neither the app nor its heavy
libraries (GraphQL, LangChain, SQLAlchemy); the app is imported when a command needs it."""

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
