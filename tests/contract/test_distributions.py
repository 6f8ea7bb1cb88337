"""pasar-core is publishable: its sdist and the wheel built from it carry the right name,
version, entry points and the sandbox image definitions (built offline, as a release would)."""

from __future__ import annotations

import subprocess
import tarfile
import tomllib
import zipfile
from pathlib import Path

from tests.support.installed import ROOT, uv


def test_pasar_core_builds_an_sdist_and_a_wheel_with_its_metadata(tmp_path: Path) -> None:
    version = tomllib.loads((ROOT / "core" / "pyproject.toml").read_text())["project"]["version"]
    built = subprocess.run(
        [*uv(), "build", "--package", "pasar-core", "--offline", "--out-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    wheel = tmp_path / f"pasar_core-{version}-py3-none-any.whl"  # built from the sdist
    with tarfile.open(tmp_path / f"pasar_core-{version}.tar.gz") as sdist:
        names = sdist.getnames()
    assert f"pasar_core-{version}/src/pasar_core/sandbox/_images/python/runner.py" in names
    with zipfile.ZipFile(wheel) as archive:
        info = f"pasar_core-{version}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        files = set(archive.namelist())
    assert "Name: pasar-core\n" in metadata
    assert f"Version: {version}\n" in metadata
    assert "[pytest11]\npasar = pasar_core.testing\n" in entry_points
    assert {"pasar_core/hookspecs.py", "pasar_core/testing.py", "pasar_core/contract.py"} <= files
    assert "pasar_core/sandbox/_images/python/Dockerfile" in files
    assert not any(name.startswith(("tests/", "hatch_build")) for name in files)
