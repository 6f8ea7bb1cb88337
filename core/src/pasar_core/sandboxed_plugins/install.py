"""Installing a sandboxed plugin, from a wheel (or a requirement) to a checked manifest.

    stage the layer (pip --target)  ->  build the image (offline)  ->  read the manifest in a
    container of that image  ->  check it  ->  (the caller) store it

Only a process that may talk to Docker runs this: `pasar plugins install --sandboxed` on the
operator's machine, or a sandbox worker serving the admin API (`plugin.install` requests). The
package's code runs only inside the container, never on the host (wheels only, no builds).
"""

from __future__ import annotations

import base64
import binascii
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pasar_core.errors import PluginPackageInvalid
from pasar_core.registry import Registry
from pasar_core.sandbox.client import SandboxClient
from pasar_core.sandbox.limits import NetworkPolicy, SandboxLimits
from pasar_core.sandbox.workloads import MANIFEST_SCOPE, PluginWorkload
from pasar_core.sandboxed_plugins.image import build_plugin_image
from pasar_core.sandboxed_plugins.layer import stage_layer
from pasar_core.sandboxed_plugins.manifest import ManifestFamily, parse_manifest

PLUGIN_LIMITS = SandboxLimits(memory_mb=256, timeout_s=60.0)
"""Loading pasar_core and a plugin needs more than a custom tool's defaults."""
_SAFE_FILENAME = re.compile(r"^[A-Za-z0-9_.!+-]{1,200}\.whl$")


@dataclass(frozen=True, slots=True)
class Built:
    """A plugin's image and the manifest its container answered (not checked yet)."""

    name: str
    distribution: str
    version: str
    image: str
    manifest: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "distribution": self.distribution, "version": self.version,
                "image": self.image, "manifest": self.manifest}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Built:
        manifest = data.get("manifest")
        return cls(
            name=str(data.get("name") or ""),
            distribution=str(data.get("distribution") or ""),
            version=str(data.get("version") or "0"),
            image=str(data.get("image") or ""),
            manifest=manifest if isinstance(manifest, dict) else {},
        )


def workload(
    name: str,
    image: str,
    revision: int,
    scope: str,
    allow_hosts: tuple[str, ...] = (),
    opened_hosts: tuple[str, ...] = (),
) -> PluginWorkload:
    return PluginWorkload(
        name=name,
        revision=revision,
        image_tag=image,
        scope=scope,
        limits=PLUGIN_LIMITS,
        network=NetworkPolicy(allow_hosts=allow_hosts, opened_hosts=opened_hosts),
    )


def build_and_read(source: str | Path, sandbox: SandboxClient) -> Built:
    """Stage the layer, build the image, read the manifest in a container of it."""
    workdir = Path(tempfile.mkdtemp(prefix="pasar-plugin-layer-"))
    try:
        layer = stage_layer(source, workdir)
        name = layer.entry_point
        image = build_plugin_image(sandbox.docker, sandbox.image, name, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = sandbox.call(workload(name, image, 0, MANIFEST_SCOPE), {"op": "manifest"})
    manifest = result.value if isinstance(result.value, dict) else {}
    return Built(name, layer.wheel.distribution, layer.wheel.version, image, manifest)


def checked(built: Built, registry: Registry) -> tuple[ManifestFamily, ...]:
    """The manifest's families, checked against this server's registry."""
    if not built.name or not built.image:
        raise PluginPackageInvalid("the sandbox worker did not say which plugin it built")
    return parse_manifest(built.manifest, registry)


def wheel_from_request(request: Mapping[str, Any], directory: Path) -> str | Path:
    """An `plugin.install` request's source: a wheel it carries (base64), or a requirement."""
    wheel = request.get("wheel")
    if isinstance(wheel, dict):
        filename = str(wheel.get("filename") or "")
        if not _SAFE_FILENAME.fullmatch(filename):
            raise PluginPackageInvalid(f"{filename[:200]!r} is not a wheel file name")
        try:
            data = base64.b64decode(str(wheel.get("content_base64") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise PluginPackageInvalid("the wheel's content_base64 is not base64") from None
        path = directory / filename
        path.write_bytes(data)
        return path
    requirement = request.get("requirement")
    if isinstance(requirement, str) and requirement.strip():
        return requirement.strip()
    raise PluginPackageInvalid("give a wheel (filename, content_base64) or a requirement")
