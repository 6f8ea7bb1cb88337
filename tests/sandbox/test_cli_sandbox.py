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


def queue_env(docker_host: str, redis_url: str) -> dict[str, str]:
    return {**env_for(docker_host), "PASAR_SANDBOX_REDIS_URL": redis_url, "REDIS_URL": ""}


def test_status_reports_the_embedded_queue(pasar_docker: DockerForTests) -> None:
    env = {**env_for(pasar_docker.docker_host), "PASAR_SANDBOX_REDIS_URL": "", "REDIS_URL": ""}
    result = CliRunner().invoke(main, ["sandbox", "status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    queue = json.loads(result.output)["queue"]
    assert queue["redis"] == "embedded"
    assert Path(queue["redis_server"]).is_file()

    off = CliRunner().invoke(
        main, ["sandbox", "status"], env={**env, "PASAR_SANDBOX_EMBEDDED": "0"}
    )
    assert off.exit_code == 1
    assert "missing: custom tools need the sandbox queue" in off.output


def test_status_with_an_unreachable_queue(pasar_docker: DockerForTests) -> None:
    from tests.support.servers import free_port

    url = f"redis://user:hunter2@127.0.0.1:{free_port()}/0"
    result = CliRunner().invoke(
        main, ["sandbox", "status"], env=queue_env(pasar_docker.docker_host, url)
    )
    assert result.exit_code == 1
    assert "queue:  redis://127.0.0.1:" in result.output
    assert "(not reachable)" in result.output
    assert "hunter2" not in result.output


def test_status_counts_waiting_and_failed_jobs_and_no_worker(
    pasar_docker: DockerForTests, sandbox_redis_url: str
) -> None:
    from pasar_core.sandbox.queue import JOB_FUNCTION, QUEUE_NAME
    from redis import Redis
    from rq import Queue
    from rq.serializers import JSONSerializer

    redis = Redis.from_url(sandbox_redis_url)
    redis.flushdb()
    queue = Queue(QUEUE_NAME, connection=redis, serializer=JSONSerializer)
    jobs = [queue.enqueue_call(JOB_FUNCTION, args=({"op": "none"},)) for _ in range(3)]
    queue.remove(jobs[0])
    queue.failed_job_registry.add(jobs[0], ttl=300, exc_string="failed in a test")
    try:
        env = queue_env(pasar_docker.docker_host, sandbox_redis_url)
        result = CliRunner().invoke(main, ["sandbox", "status", "--json"], env=env)
        assert result.exit_code == 1, result.output
        report = json.loads(result.output)
        assert report["queue"] == {
            "redis": sandbox_redis_url, "reachable": True, "queued": 2, "workers": 0,
            "failed": 1, "problem": report["queue"]["problem"],
        }  # fmt: skip
        assert "pasar worker --queue sandbox" in report["queue"]["problem"]
        assert report["ready"] is False
        text = CliRunner().invoke(main, ["sandbox", "status"], env=env).output
        assert f"queue:  {sandbox_redis_url} (2 waiting, 0 workers, 1 failed)" in text
    finally:
        redis.flushdb()
        redis.close()


def test_status_counts_the_sandbox_workers(
    pasar_docker: DockerForTests, sandbox_redis_url: str, sandbox_workers: object
) -> None:
    env = queue_env(pasar_docker.docker_host, sandbox_redis_url)
    result = CliRunner().invoke(main, ["sandbox", "status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["ready"], report["queue"]["workers"], report["queue"]["queued"]) == (True, 3, 0)
