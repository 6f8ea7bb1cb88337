"""Sandbox images, built offline from local files and tagged by the hash of their content.

An image definition is a folder of `sandbox_images/` (e.g. `sandbox_images/python/`): a
`Dockerfile` that starts `FROM scratch`, a `rootfs.toml` saying which of this machine's files make
the root filesystem (an interpreter, its standard library, the shared libraries `ldd` finds), and
pasar's own files (the runner). Nothing is pulled from a registry. The tag is
`pasar-sandbox-<name>:<hash>`; an image whose tag exists is not built again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from pasar_core.errors import SandboxUnavailable, StartupError

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger("pasar.sandbox")

BUILDER_VERSION = "1"  # bump when the way a root filesystem is staged changes
PROTOCOL_VERSION = "1"  # the runner protocol the images speak (runner.py's PROTOCOL)
LABEL_IMAGE = "pasar.sandbox.image"
LABEL_IMAGE_HASH = "pasar.sandbox.image.hash"
LABEL_PROTOCOL = "pasar.sandbox.protocol"
DEFAULT_IMAGE = "python"
_HASH_CHARS = 20


def default_images_dir() -> Path:
    """`sandbox_images/` shipped inside the package, else the source checkout's top level."""
    packaged = Path(__file__).resolve().parent / "_images"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[4] / "sandbox_images"


@dataclass(frozen=True, slots=True)
class Entry:
    """One path of the root filesystem: a file copied from `source`, literal `data`, or a dir."""

    path: str
    mode: int
    source: Path | None = None
    data: bytes | None = None

    @property
    def is_dir(self) -> bool:
        return self.source is None and self.data is None


@dataclass(frozen=True, slots=True)
class ImageDefinition:
    name: str
    directory: Path
    interpreter: Path
    stdlib: Path
    exclude: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)
    text: Mapping[str, str] = field(default_factory=dict)
    dirs: Mapping[str, int] = field(default_factory=dict)

    @property
    def dockerfile(self) -> Path:
        return self.directory / "Dockerfile"


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A definition resolved on this machine: its root filesystem and content hash."""

    definition: ImageDefinition
    entries: tuple[Entry, ...]
    content_hash: str

    @property
    def tag(self) -> str:
        return f"pasar-sandbox-{self.definition.name}:{self.content_hash[:_HASH_CHARS]}"

    @property
    def labels(self) -> dict[str, str]:
        return {
            LABEL_IMAGE: self.definition.name,
            LABEL_IMAGE_HASH: self.content_hash,
            LABEL_PROTOCOL: PROTOCOL_VERSION,
        }


@dataclass(frozen=True, slots=True)
class BuildResult:
    ref: ImageRef
    built: bool
    seconds: float


def load_definition(name: str = DEFAULT_IMAGE, images_dir: Path | None = None) -> ImageDefinition:
    directory = (images_dir or default_images_dir()) / name
    spec_file = directory / "rootfs.toml"
    if not spec_file.is_file() or not (directory / "Dockerfile").is_file():
        raise StartupError(
            f"no sandbox image definition {name!r}: expected {directory}/Dockerfile and "
            "rootfs.toml (set PASAR_SANDBOX_IMAGES_DIR to the sandbox_images folder)"
        )
    spec = tomllib.loads(spec_file.read_text())
    return ImageDefinition(
        name=name,
        directory=directory,
        interpreter=Path(spec["interpreter"]),
        stdlib=Path(spec["stdlib"]),
        exclude=tuple(spec.get("exclude", ())),
        files=dict(spec.get("files", {})),
        text=dict(spec.get("text", {})),
        dirs=dict(spec.get("dirs", {})),
    )


def resolve(definition: ImageDefinition) -> ImageRef:
    """Plan the root filesystem from this machine's files and hash it."""
    entries = _plan(definition)
    digest = hashlib.sha256()
    digest.update(f"builder {BUILDER_VERSION}\n".encode())
    digest.update(definition.dockerfile.read_bytes())
    for entry in entries:
        digest.update(f"\n{entry.path} {entry.mode:o} ".encode())
        if entry.source is not None:
            digest.update(_file_digest(entry.source))
        elif entry.data is not None:
            digest.update(hashlib.sha256(entry.data).digest())
    return ImageRef(definition=definition, entries=entries, content_hash=digest.hexdigest())


def image_present(client: DockerClient, ref: ImageRef) -> bool:
    import docker.errors

    try:
        client.images.get(ref.tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_image(
    client: DockerClient,
    definition: ImageDefinition | None = None,
    *,
    force: bool = False,
) -> BuildResult:
    """The image for `definition` (default: python), built unless its tag already exists."""
    import docker.errors

    started = time.monotonic()
    ref = resolve(definition or load_definition())
    if not force and image_present(client, ref):
        return BuildResult(ref=ref, built=False, seconds=time.monotonic() - started)
    with tempfile.TemporaryFile(prefix="pasar-sandbox-context-") as context:
        write_context(ref, context)
        context.seek(0)
        try:
            client.images.build(
                fileobj=context,
                custom_context=True,
                tag=ref.tag,
                labels=ref.labels,
                rm=True,
                forcerm=True,
                pull=False,
                network_mode="none",
            )
        except (docker.errors.BuildError, docker.errors.APIError) as error:
            raise SandboxUnavailable(
                f"building the sandbox image {ref.tag} failed: {error}", details={"image": ref.tag}
            ) from None
    seconds = time.monotonic() - started
    log.info("built sandbox image %s in %.1f s", ref.tag, seconds)
    return BuildResult(ref=ref, built=True, seconds=seconds)


def remove_stale_images(client: DockerClient, current: ImageRef) -> list[str]:
    """Remove this definition's images with another content hash; returns their tags."""
    import docker.errors

    removed: list[str] = []
    for image in client.images.list(filters={"label": f"{LABEL_IMAGE}={current.definition.name}"}):
        if image.labels.get(LABEL_IMAGE_HASH) == current.content_hash:
            continue
        try:
            client.images.remove(str(image.id), force=False)
        except docker.errors.APIError as error:  # still used by a container: keep it
            log.info("kept sandbox image %s: %s", image.short_id, error)
            continue
        removed.extend(image.tags or [image.short_id])
    return removed


def write_context(ref: ImageRef, fileobj: IO[bytes]) -> None:
    """The build context as an uncompressed tar: the Dockerfile and `rootfs/`."""
    with tarfile.open(fileobj=fileobj, mode="w") as tar:
        _add_bytes(tar, "Dockerfile", ref.definition.dockerfile.read_bytes(), 0o644)
        _add_dir(tar, "rootfs", 0o755)
        for entry in ref.entries:
            name = "rootfs" + entry.path
            if entry.is_dir:
                _add_dir(tar, name, entry.mode)
            elif entry.data is not None:
                _add_bytes(tar, name, entry.data, entry.mode)
            elif entry.source is not None:
                info = tar.gettarinfo(str(entry.source), arcname=name)
                info.type, info.linkname = tarfile.REGTYPE, ""
                info.size = entry.source.stat().st_size
                _owned_by_root(info, entry.mode)
                with entry.source.open("rb") as handle:
                    tar.addfile(info, handle)


# -- planning the root filesystem ---------------------------------------------------------------


def _plan(definition: ImageDefinition) -> tuple[Entry, ...]:
    if not definition.interpreter.is_file() or not definition.stdlib.is_dir():
        raise SandboxUnavailable(
            f"the {definition.name} sandbox image needs {definition.interpreter} and "
            f"{definition.stdlib} on the building machine (Debian: apt-get install python3.11)"
        )
    stdlib_files = list(_stdlib_files(definition))
    extensions = [path for path in stdlib_files if path.suffix == ".so"]
    libraries, unresolved = _shared_libraries([definition.interpreter, *extensions])
    if definition.interpreter in unresolved:
        raise SandboxUnavailable(f"{definition.interpreter} links libraries this machine lacks")
    files: dict[str, Entry] = {}
    for path in [definition.interpreter, *sorted(libraries)]:
        files[str(path)] = Entry(str(path), 0o755, source=path)
    for path in stdlib_files:
        if path in unresolved:  # an optional extension whose library is missing here
            log.info("sandbox image leaves out %s: a library it links is missing", path.name)
            continue
        mode = 0o755 if path.suffix == ".so" else 0o644
        files[str(path)] = Entry(str(path), mode, source=path)
    for image_path, relative in definition.files.items():
        files[image_path] = Entry(image_path, 0o644, source=definition.directory / relative)
    for image_path, content in definition.text.items():
        files[image_path] = Entry(image_path, 0o644, data=content.encode())
    dirs: dict[str, Entry] = {}
    for image_path in files:
        for parent in PurePosixPath(image_path).parents:
            if str(parent) != "/":
                dirs.setdefault(str(parent), Entry(str(parent), 0o755))
    for image_path, mode in definition.dirs.items():
        dirs[image_path] = Entry(image_path, mode)
    return tuple(sorted(dirs.values(), key=_by_path)) + tuple(sorted(files.values(), key=_by_path))


def _by_path(entry: Entry) -> str:
    return entry.path


def _stdlib_files(definition: ImageDefinition) -> Iterator[Path]:
    root = definition.stdlib

    def excluded(relative: str) -> bool:
        name = relative.rsplit("/", 1)[-1]
        return any(
            fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in definition.exclude
        )

    for directory, subdirs, names in os.walk(root):
        base = os.path.relpath(directory, root)
        prefix = "" if base == "." else base + "/"
        subdirs[:] = sorted(d for d in subdirs if not excluded(prefix + d))
        for name in sorted(names):
            path = Path(directory) / name
            if not excluded(prefix + name) and path.is_file():
                yield path


def _shared_libraries(binaries: Iterable[Path]) -> tuple[set[Path], set[Path]]:
    """The libraries `ldd` finds for `binaries`, and the binaries with a library not found."""
    ldd = shutil.which("ldd")
    if ldd is None:
        raise SandboxUnavailable("building a sandbox image needs ldd (Debian: libc-bin)")
    binaries = list(binaries)
    output = subprocess.run(  # noqa: S603 - fixed tool, paths from the image definition
        [ldd, *map(str, binaries)], capture_output=True, text=True, check=False
    ).stdout
    libraries: set[Path] = set()
    unresolved: set[Path] = set()
    current = binaries[0] if len(binaries) == 1 else None
    for line in output.splitlines():
        if not line.startswith(("\t", " ")):  # "path:" heads each binary's section
            current = Path(line.rstrip(":"))
            continue
        words = line.split()
        if "not" in words and "found" in words:
            if current is not None:
                unresolved.add(current)
        elif "=>" in words and len(words) > words.index("=>") + 1:
            target = words[words.index("=>") + 1]
            if target.startswith("/"):
                libraries.add(Path(target))
        elif words and words[0].startswith("/"):
            libraries.add(Path(words[0]))
    return libraries, unresolved


def _file_digest(path: Path) -> bytes:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").digest()


def _owned_by_root(info: tarfile.TarInfo, mode: int) -> None:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = mode


def _add_dir(tar: tarfile.TarFile, name: str, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    _owned_by_root(info, mode)
    tar.addfile(info)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    _owned_by_root(info, mode)
    tar.addfile(info, io.BytesIO(data))


def image_summary(client: DockerClient, ref: ImageRef) -> dict[str, Any]:
    """Tag, presence and size, for `pasar sandbox status`."""
    import docker.errors

    try:
        image = client.images.get(ref.tag)
    except docker.errors.ImageNotFound:
        return {"tag": ref.tag, "present": False}
    return {"tag": ref.tag, "present": True, "size_mb": round(image.attrs["Size"] / 1e6, 1)}
