"""Packages a test installs into the test environment itself, and always removes again.

Tests run serially in one environment, so a package left behind would change what every later
test (and the next session) sees: removal is checked, and retried with pip if uv fails.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).parents[2]


def uv() -> list[str]:
    """uv as the scripts run it (scripts/_uv.sh): the `uv` command, else `python3 -m uv`."""
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def is_installed(distribution: str) -> bool:
    """Asked of a fresh interpreter: this process caches what it has already looked up."""
    probe = (
        "import importlib.metadata as m, sys\n"
        "try: m.distribution(sys.argv[1])\n"
        "except m.PackageNotFoundError: sys.exit(1)\n"
    )
    return subprocess.run([sys.executable, "-c", probe, distribution], check=False).returncode == 0


def uninstall(distribution: str) -> None:
    """Remove `distribution` from this environment, whatever state an earlier test left."""
    commands = (
        [*uv(), "pip", "uninstall", "--python", sys.executable, distribution],
        [sys.executable, "-m", "pip", "uninstall", "--yes", distribution],
    )
    for command in commands:
        if not is_installed(distribution):
            return
        subprocess.run(command, cwd=ROOT, capture_output=True, check=False, timeout=120)
    if is_installed(distribution):
        raise AssertionError(f"{distribution} is still installed in the test environment")


@contextlib.contextmanager
def installed(source: Path, distribution: str) -> Iterator[None]:
    """`uv pip install` a package (a source directory or a wheel) into this environment, as an
    operator would into a deployment (README), for the length of a `with` block."""
    uninstall(distribution)  # left over from a session that was killed mid-test
    try:
        subprocess.run(
            [*uv(), "pip", "install", "--python", sys.executable, "--offline", "--no-deps",
             str(source)],
            cwd=ROOT, capture_output=True, check=True, timeout=300,
        )  # fmt: skip
        yield
    finally:
        uninstall(distribution)
