"""The sandbox image: built offline from this machine's files, tagged by its content."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from pasar_core.sandbox import images
from pasar_core.testing import DockerForTests


def test_the_root_filesystem_plan() -> None:
    ref = images.resolve(images.load_definition())
    paths = {entry.path for entry in ref.entries}
    assert {"/usr/bin/python3.11", "/opt/pasar/runner.py", "/lib64/ld-linux-x86-64.so.2"} <= paths
    assert "/usr/lib/python3.11/json/__init__.py" in paths
    assert "/usr/lib/python3.11/lib-dynload/_ctypes.cpython-311-x86_64-linux-gnu.so" in paths
    assert not {"/bin/sh", "/usr/bin/sh", "/bin/bash"} & paths  # no shell in the image
    assert not any(p.startswith(("/usr/lib/python3.11/test/", "/usr/lib/python3.11/config-"))
                   for p in paths)  # fmt: skip
    assert images.resolve(images.load_definition()).content_hash == ref.content_hash


def test_a_change_to_the_definition_is_a_new_tag(tmp_path: Path) -> None:
    shutil.copytree(images.default_images_dir(), tmp_path / "images")
    original = images.resolve(images.load_definition("python", tmp_path / "images"))
    dockerfile = tmp_path / "images" / "python" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "\n# changed\n")
    changed = images.resolve(images.load_definition("python", tmp_path / "images"))
    assert changed.tag != original.tag
    assert changed.tag.startswith("pasar-sandbox-python:")


def test_the_runner_speaks_the_protocol_the_images_are_labelled_with() -> None:
    spec = importlib.util.spec_from_file_location(
        "pasar_runner", images.default_images_dir() / "python" / "runner.py"
    )
    assert spec is not None
    assert spec.loader is not None
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    assert str(runner.PROTOCOL) == images.PROTOCOL_VERSION


def test_the_built_image_is_labelled_and_not_rebuilt(pasar_docker: DockerForTests) -> None:
    client = pasar_docker.client()
    try:
        again = images.ensure_image(client)
        assert again.built is False
        assert again.ref.tag == pasar_docker.image
        image = client.images.get(pasar_docker.image)
    finally:
        client.close()
    assert image.labels[images.LABEL_IMAGE] == "python"
    assert image.labels[images.LABEL_IMAGE_HASH] == again.ref.content_hash
    assert image.labels[images.LABEL_PROTOCOL] == images.PROTOCOL_VERSION
    config = image.attrs["Config"]
    assert config["User"] == "65534:65534"
    assert config["Entrypoint"][-1] == "/opt/pasar/runner.py"
