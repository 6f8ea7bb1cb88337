"""`pasar sandbox status` and `pasar sandbox build`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner
from pasar_core.sandbox.images import default_images_dir
from pasar_core.testing import DockerForTests

from pasar.cli import main


def env_for(docker_host: str, images_dir: Path | None = None) -> dict[str, str]:
    env = {"DOCKER_HOST": docker_host, "PASAR_SANDBOX_DOCKER_HOST": ""}
    env["PASAR_SANDBOX_IMAGES_DIR"] = str(images_dir) if images_dir else ""
    return env


def test_status_without_a_daemon_says_how_to_start_one() -> None:
    env = env_for("unix:///nonexistent/docker.sock")
    result = CliRunner().invoke(main, ["sandbox", "status"], env=env)
    assert result.exit_code == 1
    assert "not reachable" in result.output
    assert "apt-get install -y docker.io" in result.output
    assert "dockerd" in result.output

    report = json.loads(CliRunner().invoke(main, ["sandbox", "status", "--json"], env=env).output)
    assert report["ready"] is False
    assert report["daemon"]["reachable"] is False


def test_build_without_a_daemon_fails_cleanly() -> None:
    env = env_for("unix:///nonexistent/docker.sock")
    result = CliRunner().invoke(main, ["sandbox", "build"], env=env)
    assert result.exit_code == 1
    assert "Error: no Docker daemon answers" in result.output
    assert "Traceback" not in result.output


def test_status_with_the_daemon_and_image(pasar_docker: DockerForTests) -> None:
    result = CliRunner().invoke(main, ["sandbox", "status"], env=env_for(pasar_docker.docker_host))
    assert result.exit_code == 0, result.output
    assert f"image:  {pasar_docker.image} (present" in result.output
    assert "ready" in result.output


def test_build_is_cached_by_content_and_prunes_old_builds(
    pasar_docker: DockerForTests, tmp_path: Path
) -> None:
    cached = CliRunner().invoke(main, ["sandbox", "build"], env=env_for(pasar_docker.docker_host))
    assert cached.exit_code == 0, cached.output
    assert cached.output == f"{pasar_docker.image} is up to date\n"

    changed = tmp_path / "sandbox_images"
    shutil.copytree(default_images_dir(), changed)
    runner = changed / "python" / "runner.py"
    runner.write_text(runner.read_text() + "\n# a changed runner is a new image\n")
    env = env_for(pasar_docker.docker_host, changed)
    missing = CliRunner().invoke(main, ["sandbox", "status", "--json"], env=env)
    assert missing.exit_code == 1
    other_tag = json.loads(missing.output)["image"]["tag"]
    assert other_tag != pasar_docker.image
    built = CliRunner().invoke(main, ["sandbox", "build"], env=env)
    assert built.exit_code == 0, built.output
    assert built.output.startswith(f"built {other_tag} in ")

    pruned = CliRunner().invoke(
        main, ["sandbox", "build", "--prune"], env=env_for(pasar_docker.docker_host)
    )
    assert pruned.exit_code == 0, pruned.output
    assert f"removed {other_tag}" in pruned.output
    assert pasar_docker.image not in pruned.output.split("\n", 1)[1]
