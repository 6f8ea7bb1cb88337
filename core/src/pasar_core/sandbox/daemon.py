"""Reaching the Docker daemon, and saying how to start one when none answers."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pasar_core.errors import SandboxUnavailable
from pasar_core.sandbox.settings import SandboxSettings

if TYPE_CHECKING:
    from docker import DockerClient

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
HOW_TO_START = (
    "start a Docker daemon on this machine (Debian, as root: `apt-get install -y docker.io`, "
    "then `dockerd &` or `systemctl start docker`), or point PASAR_SANDBOX_DOCKER_HOST "
    "(or DOCKER_HOST) at a running one"
)
_TLS_VARIABLES = ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
PING_API_VERSION = "1.24"


def docker_address(settings: SandboxSettings) -> str:
    return settings.docker_host or DEFAULT_SOCKET


def ping(docker_host: str, *, timeout_s: float = 5.0) -> bool:
    """Whether a daemon answers at `docker_host` (the client is closed again either way)."""
    import docker

    if docker_host.startswith("unix://"):
        return _ping_unix(docker_host.removeprefix("unix://"), timeout_s)

    # A fixed, old API version: the SDK's version negotiation would send a request from the
    # constructor and leak its connection when that fails.
    api = docker.APIClient(base_url=docker_host, version=PING_API_VERSION, timeout=int(timeout_s))
    try:
        return bool(api.ping())
    except Exception:
        return False
    finally:
        api.close()


def _ping_unix(path: str, timeout_s: float) -> bool:
    # By hand: docker-py's unix connection leaks its socket when connecting fails.
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
    except OSError:
        return False
    return answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n", 1)[0]


def connect(settings: SandboxSettings, *, timeout_s: float = 60.0) -> DockerClient:
    """A client for the sandbox daemon; `SandboxUnavailable` (saying how to start one) if none
    answers. The connection pool fits every container the worker may run at once."""
    import docker
    import docker.errors
    import requests.exceptions

    environment = {name: os.environ[name] for name in _TLS_VARIABLES if name in os.environ}
    environment["DOCKER_HOST"] = docker_address(settings)
    if "DOCKER_TLS_VERIFY" not in environment and not ping(environment["DOCKER_HOST"]):
        raise SandboxUnavailable(
            f"no Docker daemon answers at {docker_address(settings)}: {HOW_TO_START}",
            details={"docker_host": docker_address(settings)},
        )
    try:
        client = docker.from_env(
            environment=environment,
            timeout=int(timeout_s),
            max_pool_size=2 * settings.max_containers + 4,
        )
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        raise SandboxUnavailable(
            f"no Docker daemon answers at {docker_address(settings)}: {HOW_TO_START}",
            details={"docker_host": docker_address(settings)},
        ) from None
    return client


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    address: str
    reachable: bool
    version: str | None = None
    error: str | None = None


def daemon_status(settings: SandboxSettings) -> tuple[DaemonStatus, DockerClient | None]:
    """Whether the daemon answers (and its version), with the client when it does."""
    try:
        client = connect(settings, timeout_s=10)
    except SandboxUnavailable as error:
        return DaemonStatus(docker_address(settings), False, error=error.message), None
    version = str(client.version().get("Version", "?"))
    return DaemonStatus(docker_address(settings), True, version=version), client
