"""What runs in a sandbox container: one workload per container, loaded once, called many times.

A Python custom tool (source + entrypoint), or a sandboxed plugin, whose image is the base image
plus a layer with pasar_core, the wheel and its dependencies, loaded by entry point (`load` with
`"kind": "plugin"` answers its manifest; `invoke` runs one of its tools). Both give the client
the same three things: a pool key, the container labels, and the `load` request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Protocol

from pasar_core.sandbox.limits import DEFAULT_LIMITS, NO_NETWORK, NetworkPolicy, SandboxLimits
from pasar_core.sandbox.policy import LABEL_TOOL_ID, LABEL_TOOL_VERSION


class Workload(Protocol):
    @property
    def tool_id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def limits(self) -> SandboxLimits: ...
    @property
    def network(self) -> NetworkPolicy: ...

    @property
    def image(self) -> str | None:
        """The image to run (None: the client's base image)."""

    def pool_key(self) -> Hashable:
        """Calls with equal keys may share a warm container."""

    def load_request(self, limits: SandboxLimits) -> dict[str, Any]:
        """The runner's `load` request, sent once when the container starts."""


@dataclass(frozen=True, slots=True)
class PythonTool:
    """A custom tool: Python source whose `entrypoint(args)` returns a JSON value (an `async
    def` works too). Its module runs once per container; module state may survive between calls
    of the same tool version in a warm container, as in a serverless warm start."""

    tool_id: str
    version: int
    source: str
    entrypoint: str = "run"
    limits: SandboxLimits = DEFAULT_LIMITS
    network: NetworkPolicy = NO_NETWORK

    @property
    def image(self) -> str | None:
        return None

    @property
    def source_sha256(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8", "surrogatepass")).hexdigest()

    def pool_key(self) -> Hashable:
        return ("python", self.tool_id, self.version, self.source_sha256, self.entrypoint,
                self.limits, self.network)  # fmt: skip

    def load_request(self, limits: SandboxLimits) -> dict[str, Any]:
        return {
            "op": "load",
            "kind": "python",
            "source": self.source,
            "entrypoint": self.entrypoint,
            "caps": {
                "stdout_bytes": limits.stdout_bytes,
                "stderr_bytes": limits.stderr_bytes,
                "result_bytes": limits.result_bytes,
            },
        }


def workload_labels(workload: Workload) -> dict[str, str]:
    return {LABEL_TOOL_ID: workload.tool_id, LABEL_TOOL_VERSION: str(workload.version)}


@dataclass(frozen=True, slots=True)
class PluginWorkload:
    """A sandboxed plugin in its own image. `scope` says whom a container serves: calls of
    different users never share a container (a plugin cannot keep one user's token or data
    for another), and the manifest is read in a container of its own (`MANIFEST_SCOPE`)."""

    name: str
    revision: int
    image_tag: str
    scope: str
    limits: SandboxLimits = DEFAULT_LIMITS
    network: NetworkPolicy = NO_NETWORK

    @property
    def tool_id(self) -> str:
        return f"plugin:{self.name}"

    @property
    def version(self) -> int:
        return self.revision

    @property
    def image(self) -> str | None:
        return self.image_tag

    def pool_key(self) -> Hashable:
        return ("plugin", self.name, self.revision, self.image_tag, self.scope, self.limits,
                self.network)  # fmt: skip

    def load_request(self, limits: SandboxLimits) -> dict[str, Any]:
        return {
            "op": "load",
            "kind": "plugin",
            "plugin": self.name,
            "caps": {
                "stdout_bytes": limits.stdout_bytes,
                "stderr_bytes": limits.stderr_bytes,
                "result_bytes": limits.result_bytes,
            },
        }


MANIFEST_SCOPE = "manifest"
