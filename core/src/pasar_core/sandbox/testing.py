"""A Docker daemon for a test session (used by the `pasar_docker` fixture and the benchmarks).

Uses a daemon that answers (DOCKER_HOST, else the default socket); else starts a private one
(`LocalDockerd`: root and Debian's docker.io needed) and stops it, with everything it started, at
the end. Raises `NoDockerForTests` with the reason when neither is possible.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pasar_core.sandbox import images
from pasar_core.sandbox.daemon import DEFAULT_SOCKET, ping
from pasar_core.sandbox.local_daemon import LocalDockerd, unavailable_reason

if TYPE_CHECKING:
    from docker import DockerClient


class NoDockerForTests(RuntimeError):
    """No daemon answers and none can be started here."""


@dataclass(frozen=True, slots=True)
class DockerForTests:
    docker_host: str
    started_here: bool
    image: str
    """The python sandbox image, built (or found) for this session."""
    worker_name: str
    """Unique per session: every sandbox container the session creates carries it."""
    started_at: float

    def client(self) -> DockerClient:
        import docker

        return docker.DockerClient(base_url=self.docker_host, timeout=60)


@contextlib.contextmanager
def docker_daemon(parent: Path) -> Iterator[tuple[str, bool]]:
    """(DOCKER_HOST, started here) of a daemon that answers, for the duration of the block."""
    tried: list[str] = []
    candidates = [os.environ["DOCKER_HOST"]] if os.environ.get("DOCKER_HOST") else []
    if Path(DEFAULT_SOCKET.removeprefix("unix://")).exists():
        candidates.append(DEFAULT_SOCKET)
    for candidate in candidates:
        if ping(candidate):
            yield candidate, False
            return
        tried.append(f"{candidate} does not answer")
    reason = unavailable_reason()
    if reason:
        raise NoDockerForTests("; ".join([*tried, reason]))
    daemon = LocalDockerd(parent)
    try:
        docker_host = daemon.start()
    except Exception as error:
        raise NoDockerForTests(f"could not start a private dockerd: {error}") from None
    try:
        yield docker_host, True
    finally:
        daemon.stop()


@contextlib.contextmanager
def docker_for_tests(parent: Path) -> Iterator[DockerForTests]:
    """A daemon and the python sandbox image, once per session."""
    import docker

    with docker_daemon(parent) as (docker_host, started_here):
        client = docker.DockerClient(base_url=docker_host, timeout=120)
        try:
            image = images.ensure_image(client).ref.tag
        finally:
            client.close()
        yield DockerForTests(
            docker_host=docker_host,
            started_here=started_here,
            image=image,
            worker_name=f"pasar-test-{uuid.uuid4().hex[:12]}",
            started_at=time.time(),
        )
