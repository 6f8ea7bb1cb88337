"""The hardening every sandbox container gets, and the check that the daemon applied it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docker.types import LogConfig, Ulimit

from pasar_core.sandbox.egress import PROXY_ENVIRONMENT
from pasar_core.sandbox.limits import MIB, NO_NETWORK, NetworkPolicy, SandboxLimits

if TYPE_CHECKING:
    from docker import APIClient

LABEL_SANDBOX = "pasar.sandbox"
LABEL_WORKER = "pasar.sandbox.worker"
LABEL_INSTANCE = "pasar.sandbox.instance"
LABEL_OWNER = "pasar.sandbox.owner"
LABEL_TOOL_ID = "pasar.tool.id"
LABEL_TOOL_VERSION = "pasar.tool.version"

SANDBOX_USER = "65534:65534"
TMP_PATH = "/tmp"  # noqa: S108 - the container's own tmpfs, not the host's /tmp
OPEN_FILES = 256


@dataclass(frozen=True, slots=True)
class ContainerPolicy:
    """One container's configuration: the image, its limits, its network, its labels."""

    image: str
    limits: SandboxLimits
    network: NetworkPolicy = NO_NETWORK
    labels: Mapping[str, str] = field(default_factory=dict)

    def create_arguments(self, api: APIClient) -> dict[str, Any]:
        """Keyword arguments for `APIClient.create_container`."""
        limits = self.limits
        memory = f"{limits.memory_mb}m"
        host_config = api.create_host_config(
            network_mode="none",
            dns=["127.0.0.1"],  # a resolver lookup can only ever reach the container's loopback
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],  # the default seccomp profile stays on
            privileged=False,
            pids_limit=limits.pids,
            mem_limit=memory,
            memswap_limit=memory,  # no swap
            nano_cpus=int(limits.cpus * 1e9),
            tmpfs={TMP_PATH: f"rw,nosuid,nodev,noexec,size={limits.tmpfs_mb}m,mode=1777"},
            ipc_mode="none",
            init=True,  # docker-init as PID 1 reaps what the workload leaves behind
            log_config=LogConfig(type=LogConfig.types.NONE),  # output never lands on disk
            ulimits=[
                Ulimit(name="core", soft=0, hard=0),
                Ulimit(name="nofile", soft=OPEN_FILES, hard=OPEN_FILES),
            ],
            auto_remove=False,  # the worker inspects an exited container (OOM?) and removes it
        )
        return {
            "image": self.image,
            "stdin_open": True,  # and StdinOnce: the runner exits when its worker goes away
            "tty": False,
            "user": SANDBOX_USER,
            "hostname": "sandbox",
            "working_dir": TMP_PATH,
            "labels": {LABEL_SANDBOX: "1", **self.labels},
            # With allow_hosts, the proxy variables name the egress relay on the container's
            # own loopback (the network stays `none`): nothing else is added.
            "environment": dict(PROXY_ENVIRONMENT) if self.network.allow_hosts else None,
            "host_config": host_config,
            # Without this the SDK copies proxy settings from ~/.docker/config.json into the
            # container's environment: nothing of the worker's may reach it.
            "use_config_proxy": False,
        }

    def problems(self, inspected: Mapping[str, Any]) -> list[str]:
        """What the daemon did not apply of this policy, from `docker inspect` of the container."""
        host = inspected.get("HostConfig") or {}
        config = inspected.get("Config") or {}
        limits = self.limits
        expected: dict[str, Any] = {
            "ReadonlyRootfs": True,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "NetworkMode": "none",
            "Privileged": False,
            "PidsLimit": limits.pids,
            "Memory": limits.memory_mb * MIB,
            "MemorySwap": limits.memory_mb * MIB,
            "NanoCpus": int(limits.cpus * 1e9),
            "IpcMode": "none",
            "PidMode": "",
            "UsernsMode": "",
        }
        problems = [
            f"HostConfig.{key} is {host.get(key)!r}, expected {value!r}"
            for key, value in expected.items()
            if host.get(key) != value
        ]
        if host.get("CapAdd"):
            problems.append(f"HostConfig.CapAdd is {host['CapAdd']!r}")
        if (
            host.get("Binds")
            or host.get("Mounts")
            or host.get("VolumesFrom")
            or host.get("Devices")
        ):
            problems.append("the container has host mounts or devices")
        if inspected.get("Mounts"):
            problems.append(f"Mounts is {inspected['Mounts']!r}, expected none")
        if set(host.get("Tmpfs") or {}) != {TMP_PATH}:
            problems.append(f"HostConfig.Tmpfs is {host.get('Tmpfs')!r}, expected only {TMP_PATH}")
        if config.get("User") != SANDBOX_USER:
            problems.append(f"Config.User is {config.get('User')!r}, expected {SANDBOX_USER}")
        if (host.get("LogConfig") or {}).get("Type") != "none":
            problems.append("container logs are kept")
        env = {item.split("=", 1)[0]: item.partition("=")[2] for item in config.get("Env") or []}
        proxies = {name: env[name] for name in PROXY_ENVIRONMENT if name in env}
        if proxies != (PROXY_ENVIRONMENT if self.network.allow_hosts else {}):
            problems.append(f"the proxy variables are {proxies!r}")
        return problems
