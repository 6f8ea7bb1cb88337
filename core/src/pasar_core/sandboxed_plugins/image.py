"""A sandboxed plugin's image: its staged layer on top of the python sandbox image, offline.

The build context is written by hand (every file root-owned, 0644, directories 0755; symlinks
and special files of the staged tree are left out), the Dockerfile only `COPY`s it under
/opt/pasar, and the tag is `pasar-sandbox-plugin-<name>:<hash of base image and layer>`: an
unchanged plugin is not built again. Nothing is pulled (`FROM` the local base tag).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pasar_core.errors import SandboxUnavailable
from pasar_core.sandbox.images import (
    LABEL_IMAGE,
    LABEL_IMAGE_HASH,
    LABEL_PROTOCOL,
    PROTOCOL_VERSION,
)

if TYPE_CHECKING:
    from docker import DockerClient

LABEL_PLUGIN = "pasar.sandbox.plugin"
_HASH_CHARS = 20
_TAG_NAME = re.compile(r"[^a-z0-9_.-]+")


def _files(root: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for directory, subdirs, names in os.walk(root, followlinks=False):
        subdirs.sort()
        for name in sorted(names):
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink():
                found.append((path.relative_to(root).as_posix(), path))
    return found


def layer_hash(base_image: str, layer: Path) -> str:
    digest = hashlib.sha256(f"base {base_image}\n".encode())
    for top in ("core", "plugin"):
        for relative, path in _files(layer / top):
            digest.update(f"{top}/{relative}\n".encode())
            with path.open("rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def image_tag(name: str, content_hash: str) -> str:
    safe = _TAG_NAME.sub("-", name.lower()).strip("-.") or "plugin"
    return f"pasar-sandbox-plugin-{safe[:60]}:{content_hash[:_HASH_CHARS]}"


def _dockerfile(base_image: str) -> bytes:
    return (
        f"FROM {base_image}\nCOPY core/ /opt/pasar/core/\nCOPY plugin/ /opt/pasar/plugin/\n"
    ).encode()


def _add(
    tar: tarfile.TarFile, name: str, *, data: bytes | None = None, source: Path | None = None
) -> None:
    info = tarfile.TarInfo(name)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if data is None and source is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        return
    info.mode = 0o644
    if source is not None:
        info.size = source.stat().st_size
        with source.open("rb") as handle:
            tar.addfile(info, handle)
    else:
        assert data is not None
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def write_context(base_image: str, layer: Path, fileobj: IO[bytes]) -> None:
    with tarfile.open(fileobj=fileobj, mode="w") as tar:
        _add(tar, "Dockerfile", data=_dockerfile(base_image))
        for top in ("core", "plugin"):
            _add(tar, top)
            seen: set[str] = set()
            for relative, path in _files(layer / top):
                parts = relative.split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    directory = "/".join(parts[:depth])
                    if directory not in seen:
                        seen.add(directory)
                        _add(tar, f"{top}/{directory}")
                _add(tar, f"{top}/{relative}", source=path)


def build_plugin_image(client: DockerClient, base_image: str, name: str, layer: Path) -> str:
    """The plugin's image tag, built unless it exists already."""
    import docker.errors

    content_hash = layer_hash(base_image, layer)
    tag = image_tag(name, content_hash)
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryFile(prefix="pasar-plugin-context-") as context:
        write_context(base_image, layer, context)
        context.seek(0)
        try:
            client.images.build(
                fileobj=context,
                custom_context=True,
                tag=tag,
                labels={
                    LABEL_IMAGE: f"plugin-{name}",
                    LABEL_IMAGE_HASH: content_hash,
                    LABEL_PROTOCOL: PROTOCOL_VERSION,
                    LABEL_PLUGIN: name,
                },
                rm=True,
                forcerm=True,
                pull=False,
                network_mode="none",
            )
        except (docker.errors.BuildError, docker.errors.APIError) as error:
            raise SandboxUnavailable(
                f"building the plugin image {tag} failed: {error}", details={"image": tag}
            ) from None
    return tag
