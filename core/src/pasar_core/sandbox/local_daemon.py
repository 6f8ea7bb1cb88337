"""A private `dockerd` for tests and benchmarks, in a directory of its own (never under /root).

It gets its own data root, exec root, socket, pidfile, config file and containerd namespace, and
its own bridge interface: a second daemon with `--bridge none` would delete the first daemon's
`docker0`, and one sharing `docker0` would fight over it. It leaves the host's iptables and
ip_forward alone (sandbox containers have no network anyway). `stop()` removes its containers,
stops the daemon (and its containerd), unmounts what it left, deletes its bridge and directory.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

DEFAULT_PARENT = Path("/tmp")  # noqa: S108 - the daemon's own fresh directory under it


def unavailable_reason() -> str | None:
    """Why a private daemon cannot start here, or None."""
    if os.geteuid() != 0:
        return "starting a private dockerd needs root"
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (Debian, as root: apt-get install -y docker.io)"
    if shutil.which("ip") is None:
        return "the ip command is missing (Debian: apt-get install -y iproute2)"
    return None


class LocalDockerd:
    def __init__(self, parent: Path = DEFAULT_PARENT) -> None:
        resolved = parent.resolve()
        if resolved.is_relative_to("/root"):
            raise ValueError("a private dockerd's directory must be outside /root")
        self.parent = resolved
        self.base: Path | None = None
        self.bridge = f"pasar{secrets.token_hex(4)}"  # at most 15 characters
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def docker_host(self) -> str:
        if self.base is None:
            raise RuntimeError("the private dockerd is not started")
        return f"unix://{self.base / 'docker.sock'}"

    def start(self, *, timeout_s: float = 60.0) -> str:
        """Start the daemon and wait until it answers; returns its DOCKER_HOST."""
        from pasar_core.sandbox.daemon import ping

        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        self.base = Path(tempfile.mkdtemp(prefix="pasar-dockerd-", dir=self.parent))
        (self.base / "daemon.json").write_text("{}")
        subprocess.run(  # noqa: S603
            ["ip", "link", "add", self.bridge, "type", "bridge"],  # noqa: S607
            check=True,
            capture_output=True,
        )
        namespace = f"pasar-{self.bridge}"
        log = (self.base / "dockerd.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            [  # noqa: S607
                "dockerd",
                f"--data-root={self.base / 'data'}",
                f"--exec-root={self.base / 'exec'}",
                f"--host={self.docker_host}",
                f"--pidfile={self.base / 'docker.pid'}",
                f"--config-file={self.base / 'daemon.json'}",
                f"--bridge={self.bridge}",
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                f"--containerd-namespace={namespace}",
                f"--containerd-plugins-namespace={namespace}-plugins",
                "--log-level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(f"dockerd exited at start:\n{tail}")
            if ping(self.docker_host):
                return self.docker_host
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(f"dockerd did not answer within {timeout_s:g} s:\n{tail}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 20) -> str:
        if self.base is None or not (self.base / "dockerd.log").exists():
            return ""
        return "\n".join(
            (self.base / "dockerd.log").read_text(errors="replace").splitlines()[-lines:]
        )

    def stop(self) -> None:
        """Stop everything this daemon started and delete its directory and bridge."""
        if self.process is not None and self.process.poll() is None:
            self._remove_containers()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        if self.base is not None:
            self._kill_containerd()
            self._unmount_leftovers()
        subprocess.run(  # noqa: S603
            ["ip", "link", "del", self.bridge],  # noqa: S607
            check=False,
            capture_output=True,
        )
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    def _remove_containers(self) -> None:
        import docker

        with contextlib.suppress(Exception):
            client = docker.DockerClient(base_url=self.docker_host, timeout=30)
            try:
                for container in client.api.containers(all=True):
                    client.api.remove_container(container["Id"], force=True)
            finally:
                client.close()

    def _kill_containerd(self) -> None:
        assert self.base is not None
        pidfile = self.base / "exec" / "containerd" / "containerd.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)

    def _unmount_leftovers(self) -> None:
        assert self.base is not None
        base = str(self.base)
        points = [
            point for point in _mount_points() if point == base or point.startswith(base + "/")
        ]
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)  # noqa: S603,S607


def _mount_points() -> Iterator[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            if len(fields) > 4:
                yield fields[4].replace("\\040", " ")
