"""docs/plugins.md's example plugin and its tests run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).parents[2] / "docs" / "plugins.md"


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOCS.read_text(), re.M | re.S)


def test_the_docs_example_plugin_passes_the_docs_example_tests(tmp_path: Path) -> None:
    [pyproject] = [b for b in code_blocks("toml") if "# pyproject.toml of your" in b]
    [plugin] = [b for b in code_blocks("python") if b.startswith("# src/pasar_weather/")]
    [tests] = [b for b in code_blocks("python") if "def test_contract" in b]
    (tmp_path / "pyproject.toml").write_text(
        pyproject + '\n[tool.pytest.ini_options]\npythonpath = ["src"]\n'
    )
    (tmp_path / "src" / "pasar_weather").mkdir(parents=True)
    (tmp_path / "src" / "pasar_weather" / "__init__.py").write_text(plugin)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_weather.py").write_text(tests)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
