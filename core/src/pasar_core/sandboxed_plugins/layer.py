"""Stage a sandboxed plugin's files on the host: the wheel and its dependencies, plus pasar_core.

pip installs into a fresh directory (`pip install --target`), never into the server's
environment, and never runs the package's code (wheels only: an sdist would run its build
script on the host). The layer's layout, as the runner expects it:

    core/     pasar_core (this server's copy) and pluggy, so the plugin loads as it would here
    plugin/   the wheel and its dependencies (dist-info included, for the entry point)

Requirements on `pasar`, `pasar-core` and `pluggy` are left out: the layer has them already.
"""

from __future__ import annotations

import email.parser
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pasar_core.errors import PluginPackageInvalid

log = logging.getLogger("pasar.sandboxed_plugins")

PROVIDED = frozenset({"pasar", "pasar-core", "pluggy"})
ENTRY_POINT_GROUP = "pasar"
PIP_TIMEOUT_S = 600
MAX_WHEEL_BYTES = 200 * 1024 * 1024
_WHEEL_NAME = re.compile(r"^[A-Za-z0-9_.]+-[A-Za-z0-9_.!+]+(-[0-9][^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


@dataclass(frozen=True, slots=True)
class WheelInfo:
    path: Path
    distribution: str
    version: str
    entry_points: tuple[str, ...]
    requires: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Layer:
    directory: Path
    wheel: WheelInfo

    @property
    def entry_point(self) -> str:
        return self.wheel.entry_points[0]


def read_wheel(path: Path) -> WheelInfo:
    """Name, version, `pasar` entry points and requirements from a wheel's metadata (read as
    data: nothing of the wheel runs). `PLUGIN_PACKAGE_INVALID` when it is no pasar plugin."""
    if not _WHEEL_NAME.match(path.name):
        raise PluginPackageInvalid(f"{path.name!r} is not a wheel file name (name-version-...whl)")
    try:
        size = path.stat().st_size
        if size > MAX_WHEEL_BYTES:
            raise PluginPackageInvalid(f"the wheel is larger than {MAX_WHEEL_BYTES} bytes")
        with zipfile.ZipFile(path) as wheel:
            names = wheel.namelist()
            dist_info = sorted(
                {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
            )
            if len(dist_info) != 1:
                raise PluginPackageInvalid("the wheel has no single .dist-info directory")
            metadata = email.parser.Parser().parsestr(
                wheel.read(f"{dist_info[0]}/METADATA").decode("utf-8", "replace")
            )
            entry_text = ""
            if f"{dist_info[0]}/entry_points.txt" in names:
                entry_text = wheel.read(f"{dist_info[0]}/entry_points.txt").decode(
                    "utf-8", "replace"
                )
    except (OSError, zipfile.BadZipFile, KeyError) as error:
        raise PluginPackageInvalid(
            f"{path.name} is not a readable wheel ({type(error).__name__})"
        ) from None
    entry_points = _group_names(entry_text, ENTRY_POINT_GROUP)
    distribution = str(metadata.get("Name") or "")
    if not entry_points:
        raise PluginPackageInvalid(
            f"{distribution or path.name} is not a pasar plugin: it declares no entry point in "
            f"the group {ENTRY_POINT_GROUP!r}",
            details={"distribution": distribution},
        )
    if len(entry_points) > 1:
        raise PluginPackageInvalid(
            f"{distribution} declares {len(entry_points)} pasar entry points; a sandboxed "
            "package must declare exactly one",
            details={"entry_points": list(entry_points)},
        )
    return WheelInfo(
        path=path,
        distribution=distribution,
        version=str(metadata.get("Version") or "0"),
        entry_points=entry_points,
        requires=tuple(metadata.get_all("Requires-Dist") or ()),
    )


def _group_names(text: str, group: str) -> tuple[str, ...]:
    names: list[str] = []
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif current == group and "=" in line:
            names.append(line.split("=", 1)[0].strip())
    return tuple(names)


def dependencies(requires: Iterable[str]) -> list[str]:
    """Requirements the layer must install: markers evaluated, pasar's own left out."""
    needed: list[str] = []
    for text in requires:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            raise PluginPackageInvalid(
                f"the wheel has a malformed requirement {text[:200]!r}"
            ) from None
        if canonicalize_name(requirement.name) in PROVIDED:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        needed.append(str(requirement))
    return needed


def _pip(arguments: list[str]) -> None:
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
               "--no-compile", "--only-binary=:all:", *arguments]  # fmt: skip
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    try:
        completed = subprocess.run(  # noqa: S603 - fixed interpreter and options
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, env=environment,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise PluginPackageInvalid(f"pip did not finish within {PIP_TIMEOUT_S} s") from None
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        raise PluginPackageInvalid(
            "pip could not install the package: " + " / ".join(tail)[:1500],
            details={"pip_exit_code": completed.returncode},
        )


def fetch_wheel(requirement: str, directory: Path) -> Path:
    """Download one wheel (no dependencies) for a requirement from the package index."""
    try:
        Requirement(requirement)
    except InvalidRequirement:
        raise PluginPackageInvalid(
            f"{requirement[:200]!r} is neither a wheel file nor a requirement"
        ) from None
    directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
               "--no-deps", "--only-binary=:all:", "--dest", str(directory), requirement]  # fmt: skip
    completed = subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
    )
    wheels = sorted(directory.glob("*.whl"))
    if completed.returncode != 0 or len(wheels) != 1:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        raise PluginPackageInvalid(
            f"pip could not download {requirement[:200]}: " + " / ".join(tail)[:1000]
        )
    return wheels[0]


def _copy_package(module: str, destination: Path) -> None:
    spec_origin = Path(__import__(module).__file__ or "").parent
    shutil.copytree(
        spec_origin,
        destination / module,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_images", "py.typed"),
    )


def stage_layer(source: str | Path, workdir: Path) -> Layer:
    """Install `source` (a wheel path, or a requirement fetched from the index) into
    `workdir/plugin`, with pasar_core and pluggy in `workdir/core`."""
    path = Path(source)
    if path.suffix == ".whl" and path.is_file():
        wheel_path = path
    elif str(source).endswith(".whl"):
        raise PluginPackageInvalid(f"no such wheel file: {str(source)[:300]}")
    else:
        wheel_path = fetch_wheel(str(source), workdir / "download")
    wheel = read_wheel(wheel_path)
    plugin_dir, core_dir = workdir / "plugin", workdir / "core"
    plugin_dir.mkdir(parents=True)
    core_dir.mkdir(parents=True)
    _pip(["--no-deps", "--no-index", "--target", str(plugin_dir), str(wheel.path)])
    needed = dependencies(wheel.requires)
    if needed:
        log.info("installing %d dependencies of %s into its layer", len(needed), wheel.distribution)
        _pip(["--target", str(plugin_dir), *needed])
    for stray in ("bin",):  # console scripts made for the host's interpreter
        shutil.rmtree(plugin_dir / stray, ignore_errors=True)
    _copy_package("pasar_core", core_dir)
    _copy_package("pluggy", core_dir)
    return Layer(directory=workdir, wheel=wheel)
