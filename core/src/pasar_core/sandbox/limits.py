"""What one sandboxed workload may use: resource limits, output caps, network reach."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from pasar_core.errors import ValidationFailed

KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Per container: memory (no swap), CPUs, processes, /tmp size; per call: wall clock and the
    sizes of captured stdout, stderr and the JSON result."""

    memory_mb: int = 128
    cpus: float = 0.5
    pids: int = 64
    tmpfs_mb: int = 16
    timeout_s: float = 10.0
    stdout_bytes: int = 64 * KIB
    stderr_bytes: int = 64 * KIB
    result_bytes: int = 1 * MIB

    @classmethod
    def from_tool(
        cls,
        limits: Mapping[str, Any] | None,
        *,
        timeout_s: float | None = None,
        maxima: SandboxLimits,
    ) -> SandboxLimits:
        """A tool's `limits` object (and `timeout_s`), checked against the operator's maxima;
        unset fields take the defaults (lowered to the maxima)."""
        problems: list[dict[str, Any]] = []
        values: dict[str, Any] = {}
        given = dict(limits or {})
        if timeout_s is not None:
            given["timeout_s"] = timeout_s
        known = {f.name: f for f in fields(cls)}
        for key, value in given.items():
            field = known.get(key)
            if field is None:
                problems.append({"path": f"limits.{key}", "message": "unknown limit"})
                continue
            number_ok = isinstance(value, int | float) and not isinstance(value, bool)
            if field.type == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
                number_ok = False
            if not number_ok or not math.isfinite(value) or value <= 0:
                kind = "a positive integer" if field.type == "int" else "a positive number"
                problems.append({"path": f"limits.{key}", "message": f"must be {kind}"})
                continue
            ceiling = getattr(maxima, key)
            if value > ceiling:
                problems.append(
                    {"path": f"limits.{key}", "message": f"at most {ceiling:g} on this server"}
                )
                continue
            values[key] = value
        if problems:
            first = problems[0]
            raise ValidationFailed(
                f"invalid sandbox limits: {first['path']}: {first['message']}",
                details={"errors": problems},
            )
        return replace(cls().within(maxima), **values)

    def within(self, maxima: SandboxLimits) -> SandboxLimits:
        """These limits, each lowered to the operator's maximum (maxima may shrink after a tool
        was registered)."""
        lowered = {
            f.name: min(getattr(self, f.name), getattr(maxima, f.name)) for f in fields(self)
        }
        return replace(self, **lowered)

    def line_bytes(self) -> int:
        """The longest reply line the host accepts: the result plus the captured streams with
        JSON escaping (at most 6 bytes per byte) plus room for the envelope."""
        return self.result_bytes + 6 * (self.stdout_bytes + self.stderr_bytes) + 64 * KIB


DEFAULT_LIMITS = SandboxLimits()


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Where a workload may connect. Empty (the default): nowhere. `allow_hosts` (a custom tool's
    `network.allow_hosts`): only those hosts, through the worker's egress proxy
    (`pasar_core.sandbox.egress`), whose SSRF guard lets `opened_hosts` (the entries the
    operator opened with `PASAR_ALLOW_PRIVATE_HOSTS`) alone reach loopback or private addresses.
    The container itself has `--network none` either way."""

    allow_hosts: tuple[str, ...] = ()
    opened_hosts: tuple[str, ...] = ()


NO_NETWORK = NetworkPolicy()
