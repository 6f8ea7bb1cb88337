"""The operator's sandbox settings (`PASAR_SANDBOX_*`): the daemon, the pool, the maxima."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pasar_core.errors import StartupError
from pasar_core.sandbox.limits import MIB, SandboxLimits

DEFAULT_MAXIMA = SandboxLimits(
    memory_mb=1024,
    cpus=1.0,
    pids=256,
    tmpfs_mb=256,
    timeout_s=120.0,
    stdout_bytes=1 * MIB,
    stderr_bytes=1 * MIB,
    result_bytes=8 * MIB,
)


def _number(env: Mapping[str, str], name: str, default: float, *, integer: bool) -> float:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise StartupError(f"{name} must be {kind}, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise StartupError(f"{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """`docker_host`: the daemon sandbox workers use (unset: DOCKER_HOST, else the default
    socket). `worker_name` labels this worker's containers (default: the host name); a starting
    worker removes containers of its name whose process is gone. `max_containers` caps the
    containers one worker keeps; a warm container is retired after `calls_per_container` calls or
    `idle_s` seconds unused. `maxima` bound what a tool's `limits` may ask for."""

    docker_host: str | None = None
    worker_name: str = field(default_factory=socket.gethostname)
    max_containers: int = 4
    calls_per_container: int = 100
    idle_s: float = 300.0
    maxima: SandboxLimits = DEFAULT_MAXIMA
    images_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SandboxSettings:
        env = os.environ if env is None else env
        defaults = DEFAULT_MAXIMA

        def integer(name: str, default: int) -> int:
            return int(_number(env, name, default, integer=True))

        maxima = SandboxLimits(
            memory_mb=integer("PASAR_SANDBOX_MAX_MEMORY_MB", defaults.memory_mb),
            cpus=_number(env, "PASAR_SANDBOX_MAX_CPUS", defaults.cpus, integer=False),
            pids=integer("PASAR_SANDBOX_MAX_PIDS", defaults.pids),
            tmpfs_mb=integer("PASAR_SANDBOX_MAX_TMPFS_MB", defaults.tmpfs_mb),
            timeout_s=_number(
                env, "PASAR_SANDBOX_MAX_TIMEOUT_S", defaults.timeout_s, integer=False
            ),
            stdout_bytes=integer("PASAR_SANDBOX_MAX_OUTPUT_BYTES", defaults.stdout_bytes),
            stderr_bytes=integer("PASAR_SANDBOX_MAX_OUTPUT_BYTES", defaults.stderr_bytes),
            result_bytes=integer("PASAR_SANDBOX_MAX_RESULT_BYTES", defaults.result_bytes),
        )
        images_dir = env.get("PASAR_SANDBOX_IMAGES_DIR")
        return cls(
            docker_host=env.get("PASAR_SANDBOX_DOCKER_HOST") or env.get("DOCKER_HOST") or None,
            worker_name=env.get("PASAR_SANDBOX_WORKER_NAME") or socket.gethostname(),
            max_containers=integer("PASAR_SANDBOX_MAX_CONTAINERS", 4),
            calls_per_container=integer("PASAR_SANDBOX_CALLS_PER_CONTAINER", 100),
            idle_s=_number(env, "PASAR_SANDBOX_IDLE_S", 300.0, integer=False),
            maxima=maxima,
            images_dir=Path(images_dir) if images_dir else None,
        )
