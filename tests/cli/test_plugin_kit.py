"""The publisher kit: `pasar plugin new` writes a package whose tests pass as generated and that
builds into a wheel with the `pasar` entry point; `pasar plugins check` runs start-up's contract
check on a source directory, a wheel or an installed plugin."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner

from pasar.cli import main
from pasar.plugin_kit import core_requirement
from tests.support.installed import uv


def new_plugin(tmp_path: Path, name: str = "acme-weather") -> Path:
    root = tmp_path / "kit"
    result = CliRunner().invoke(main, ["plugin", "new", name, "--dir", str(root)])
    assert result.exit_code == 0, result.output
    return root


def check(target: Path | str, *flags: str) -> subprocess.CompletedProcess[str]:
    """A process of its own: checking a path imports the plugin from it."""
    return subprocess.run(
        [sys.executable, "-m", "pasar", "plugins", "check", str(target), *flags],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_new_plugin_passes_its_own_tests_and_builds_a_publishable_wheel(
    tmp_path: Path,
) -> None:
    root = new_plugin(tmp_path)
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout

    built = subprocess.run(
        [*uv(), "build", "--offline", "--wheel", "--out-dir", str(tmp_path / "dist"), str(root)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("*.whl")
    assert wheel.name == "pasar_acme_weather-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        info = "pasar_acme_weather-0.1.0.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        assert "pasar_acme_weather/__init__.py" in archive.namelist()
    assert "Name: pasar-acme-weather\n" in metadata
    assert "Version: 0.1.0\n" in metadata
    assert "Requires-Dist: pasar-core<0.2,>=0.1\n" in metadata
    assert "[pasar]\nacme_weather = pasar_acme_weather\n" in entry_points

    for target in (root, wheel):
        checked = check(target)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout == "acme_weather: follows the plugin contract\n"


def test_the_requirement_follows_the_compatibility_promise() -> None:
    assert core_requirement("0.1.0") == "pasar-core>=0.1,<0.2"
    assert core_requirement("1.4.2") == "pasar-core>=1.4,<2"
    assert core_requirement() == core_requirement(version("pasar-core"))


def test_check_lists_every_problem_of_a_broken_plugin(tmp_path: Path) -> None:
    root = new_plugin(tmp_path)
    module = root / "src" / "pasar_acme_weather" / "__init__.py"
    source = module.read_text()
    broken = (
        source.replace('"required": ["name"],\n        "additionalProperties"', '"additionalProperties"')
        .replace('"type": "object",\n        "properties": {"name"', '"type": "array",\n        "properties": {"name"')
        .replace("scopes=frozenset(),", 'scopes=frozenset({"calendar"}),')
        .replace("tools=(GREET,)", "tools=(GREET, GREET)")
    )  # fmt: skip
    assert broken.count("\n") == source.count("\n") - 1
    module.write_text(broken)
    checked = check(root)
    assert checked.returncode == 1
    assert checked.stdout.splitlines() == [
        "INVALID_REGISTRATION: plugin 'acme_weather', family 'acme_weather', tool "
        "'acme_weather:greet': input_schema must have type 'object'",
        "INVALID_REGISTRATION: plugin 'acme_weather', family 'acme_weather', tool "
        "'acme_weather:greet': scopes need an auth_provider",
        "DUPLICATE_REGISTRATION: tool id 'acme_weather:greet' is registered by both "
        "'acme_weather' and 'acme_weather'",
    ]
    as_json = json.loads(check(root, "--json").stdout)
    assert as_json["plugins"] == ["acme_weather"]
    assert [p["code"] for p in as_json["problems"]] == [
        "INVALID_REGISTRATION", "INVALID_REGISTRATION", "DUPLICATE_REGISTRATION"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import pasar_nonexistent_dependency\n",
         "PLUGIN_ERROR: plugin 'acme_weather': importing pasar_acme_weather raised "
         "ModuleNotFoundError: No module named 'pasar_nonexistent_dependency'"),
        ("def register_tool_families():\n    return []\n",
         "INVALID_REGISTRATION: plugin 'acme_weather' implements no pasar hook (@hookimpl)"),
        ("from pasar_core import hookimpl\n\n@hookimpl\ndef register_tool_familes():\n    return []\n",
         "INVALID_REGISTRATION: plugin 'acme_weather': unknown hook 'register_tool_familes'"),
        ("from pasar_core import hookimpl\n\n@hookimpl\ndef register_tool_families(settings):\n"
         "    return []\n",
         "INVALID_REGISTRATION: plugin 'acme_weather': Plugin 'acme_weather' for hook "
         "'register_tool_families'"),
        ("from pasar_core import hookimpl\n\n@hookimpl\ndef register_tool_families():\n"
         "    raise RuntimeError('no config')\n",
         "PLUGIN_ERROR: plugin 'acme_weather': register_tool_families raised RuntimeError: "
         "no config"),
    ],
)  # fmt: skip
def test_check_reports_plugins_that_do_not_load(tmp_path: Path, source: str, expected: str) -> None:
    root = new_plugin(tmp_path)
    (root / "src" / "pasar_acme_weather" / "__init__.py").write_text(source)
    checked = check(root)
    assert checked.returncode == 1
    assert checked.stdout.splitlines()[0].startswith(expected), checked.stdout
    assert all(re.match(r"[A-Z_]+: plugin ", line) for line in checked.stdout.splitlines())


def test_check_finds_installed_plugins_by_entry_point_or_distribution() -> None:
    for target in ("files", "pasar-files"):
        result = CliRunner().invoke(main, ["plugins", "check", target])
        assert result.exit_code == 0, result.output
        assert result.output == "files: follows the plugin contract\n"
    not_a_plugin = CliRunner().invoke(main, ["plugins", "check", "click"])
    assert not_a_plugin.exit_code == 1
    assert "click: declares no entry point in the group 'pasar'" in not_a_plugin.output
    missing = CliRunner().invoke(main, ["plugins", "check", "no-such-plugin"])
    assert missing.exit_code == 1
    assert "no installed plugin is named 'no-such-plugin'" in missing.output


def test_check_refuses_what_is_not_a_plugin_package(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    result = CliRunner().invoke(main, ["plugins", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert "pyproject.toml declares no 'pasar' entry point" in result.output
    fake = tmp_path / "fake-0.1-py3-none-any.whl"
    fake.write_bytes(b"not a zip")
    result = CliRunner().invoke(main, ["plugins", "check", str(fake)])
    assert result.exit_code == 1
    assert "is not a wheel" in result.output


def test_plugin_new_refuses_bad_names_and_full_directories(tmp_path: Path) -> None:
    bad = CliRunner().invoke(main, ["plugin", "new", "Bad Name", "--dir", str(tmp_path / "b")])
    assert bad.exit_code == 1
    assert "must be lowercase letters and digits" in bad.output
    assert not (tmp_path / "b").exists()
    root = new_plugin(tmp_path)
    again = CliRunner().invoke(main, ["plugin", "new", "acme-weather", "--dir", str(root)])
    assert again.exit_code == 1
    assert "is not an empty directory" in again.output


def test_plugin_new_names(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["plugin", "new", "pasar-acme", "--dir", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "created pasar-acme" in result.output
    assert (tmp_path / "a" / "src" / "pasar_acme" / "__init__.py").is_file()
    assert 'acme = "pasar_acme"' in (tmp_path / "a" / "pyproject.toml").read_text()
