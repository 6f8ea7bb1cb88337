"""One started sandbox container and its attached stdin/stdout: requests out, replies in.

Docker multiplexes an attached container's output (no TTY) into frames of an 8-byte header (stream
type, then the payload size) and the payload: stream 1 is the runner's replies, stream 2 raw
stderr. Everything read is bounded: the reply line by `SandboxLimits.line_bytes()`, raw stderr by
`stderr_bytes`, the wait by the call's timeout. A container is used by one call at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pasar_core.errors import (
    PasarError,
    PluginPackageInvalid,
    SandboxCrashed,
    SandboxedToolError,
    SandboxMemory,
    SandboxOutputTooLarge,
    SandboxTimeout,
    ToolEntrypointMissing,
    ToolRaised,
    ToolResultInvalid,
    ToolSourceInvalid,
)
from pasar_core.sandbox.limits import SandboxLimits

if TYPE_CHECKING:
    from docker import APIClient

log = logging.getLogger("pasar.sandbox")
CLOSE_LIMITS = SandboxLimits(timeout_s=5.0)
"""The plugin's `shutdown` hooks get this long before its container is removed anyway."""

STDOUT, STDERR = 1, 2
_HEADER = 8
_RECV = 256 * 1024
_TAIL = 2048

# Runner error codes -> the typed error the caller gets. Anything else is a broken runner.
RUNNER_ERRORS: dict[str, type[PasarError]] = {
    "TOOL_SOURCE_INVALID": ToolSourceInvalid,
    "TOOL_ENTRYPOINT_MISSING": ToolEntrypointMissing,
    "TOOL_RAISED": ToolRaised,
    "TOOL_RESULT_INVALID": ToolResultInvalid,
    "SANDBOX_OUTPUT_TOO_LARGE": SandboxOutputTooLarge,
    "PLUGIN_PACKAGE_INVALID": PluginPackageInvalid,
}
PLUGIN_TOOL_ERROR = "PLUGIN_TOOL_ERROR"  # a sandboxed plugin's own typed error: details.code
# Failures after which the container is still fit to serve the next call.
KEEPS_CONTAINER = frozenset({"TOOL_RAISED", "TOOL_RESULT_INVALID", PLUGIN_TOOL_ERROR})


@dataclass(frozen=True, slots=True)
class Reply:
    """A runner reply that arrived in time and within the caps."""

    ok: bool
    result: Any
    error: dict[str, Any]
    stdout: str
    stderr: str
    clean: bool

    @property
    def keeps_container(self) -> bool:
        return self.clean and (self.ok or self.error.get("code") in KEEPS_CONTAINER)

    def raise_error(self, tool_id: str) -> None:
        """Raise the typed error this reply carries (a reply with ok=false)."""
        code = str(self.error.get("code"))
        message = str(self.error.get("message") or code)[:2000]
        details = self.error.get("details")
        details = dict(details) if isinstance(details, dict) else {}
        details["tool"] = tool_id
        for stream in ("stdout", "stderr"):
            text = getattr(self, stream)
            if text:
                details[stream] = text[-_TAIL:]
        if code == PLUGIN_TOOL_ERROR:
            raise SandboxedToolError.of(str(details.pop("code", "")))(message, details=details)
        kind = RUNNER_ERRORS.get(code)
        if kind is None:
            raise SandboxCrashed(
                f"{tool_id}: the sandbox runner failed: {message}", details=details
            )
        raise kind(f"{tool_id}: {message}", details=details)


@dataclass(eq=False, slots=True)
class SandboxContainer:
    """A running container with the runner attached. `calls` counts served calls."""

    api: APIClient
    id: str
    sock: socket.socket
    response: Any  # the HTTP response that owns the hijacked connection
    key: Any
    tool_id: str
    created_at: float
    last_used: float
    calls: int = 0
    on_destroy: list[Callable[[], object]] = field(default_factory=list)
    """Called once the container is gone (e.g. closing its egress relay's channel)."""
    _next_id: int = 1
    _frames: bytearray = field(default_factory=bytearray)
    _stdout: bytearray = field(default_factory=bytearray)
    _stderr_tail: bytearray = field(default_factory=bytearray)
    _stderr_total: int = 0
    destroyed: bool = False
    shuts_down: bool = False
    """The workload has `shutdown` hooks to run (a sandboxed plugin): `destroy` asks the runner
    to `close` first, when it is idle and answered its last request."""
    _answered: bool = True

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def request(self, message: dict[str, Any], limits: SandboxLimits) -> Reply:
        """Send one request and wait for its reply within `limits.timeout_s`.

        On timeout, EOF, an oversized or garbled reply this raises a typed error and the
        container is destroyed before the error leaves (no container outlives a failure)."""
        request_id = self._next_id
        self._next_id += 1
        self._answered = False  # stays False on every failure below: no `close` to a hung runner
        deadline = time.monotonic() + limits.timeout_s
        self._stderr_total = 0
        try:
            self.sock.settimeout(limits.timeout_s)
            self.sock.sendall(json.dumps({**message, "id": request_id}).encode() + b"\n")
            line = self._read_line(deadline, limits)
        except TimeoutError:
            self.destroy()
            raise SandboxTimeout(
                f"{self.tool_id} did not finish within {limits.timeout_s:g} s; its container "
                "was killed",
                details={"tool": self.tool_id, "timeout_s": limits.timeout_s},
            ) from None
        except OSError:
            raise self._died(limits) from None
        reply = self._parse(line, request_id)
        if self._stdout or self._frames:  # more than one reply: the runner was bypassed
            return dataclasses.replace(reply, clean=False)
        self._answered = True
        return reply

    def _read_line(self, deadline: float, limits: SandboxLimits) -> bytes:
        max_line = limits.line_bytes()
        while True:
            newline = self._stdout.find(b"\n")
            if newline >= 0:
                line = bytes(self._stdout[:newline])
                del self._stdout[: newline + 1]
                return line
            if len(self._stdout) > max_line:
                self.destroy()
                raise self._too_large("its reply", max_line)
            if self._stderr_total > limits.stderr_bytes:
                self.destroy()
                raise self._too_large("stderr", limits.stderr_bytes)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(_RECV)
            if not chunk:
                raise ConnectionResetError("the container closed its output")
            self._frames += chunk
            self._demultiplex()

    def _demultiplex(self) -> None:
        frames = self._frames
        while len(frames) >= _HEADER:
            size = int.from_bytes(frames[4:8], "big")
            if len(frames) < _HEADER + size:
                return
            stream, payload = frames[0], bytes(frames[_HEADER : _HEADER + size])
            del frames[: _HEADER + size]
            if stream == STDOUT:
                self._stdout += payload
            elif stream == STDERR:
                self._stderr_total += len(payload)
                self._stderr_tail = (self._stderr_tail + payload)[-_TAIL:]

    def _parse(self, line: bytes, request_id: int) -> Reply:
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or reply.get("id") != request_id:
            self.destroy()
            raise SandboxCrashed(
                f"{self.tool_id}: the sandbox runner broke its protocol",
                details={"tool": self.tool_id},
            )
        error = reply.get("error")
        return Reply(
            ok=reply.get("ok") is True,
            result=reply.get("result"),
            error=error if isinstance(error, dict) else {},
            stdout=str(reply.get("stdout") or ""),
            stderr=str(reply.get("stderr") or ""),
            clean=reply.get("clean") is True,
        )

    def _too_large(self, what: str, limit: int) -> SandboxOutputTooLarge:
        return SandboxOutputTooLarge(
            f"{self.tool_id} wrote more than {limit} bytes to {what}; its container was killed",
            details={"tool": self.tool_id, "stream": what, "limit": limit},
        )

    def _died(self, limits: SandboxLimits) -> PasarError:
        """The container stopped answering: OOM-killed, or crashed. Removes it."""
        state = self._final_state()
        self.destroy()
        details: dict[str, Any] = {"tool": self.tool_id, "exit_code": state.get("ExitCode")}
        if state.get("OOMKilled"):
            return SandboxMemory(
                f"{self.tool_id} ran out of memory ({limits.memory_mb} MB) and was killed",
                details={**details, "memory_mb": limits.memory_mb},
            )
        tail = self._stderr_tail.decode("utf-8", "replace").strip()
        if tail:
            details["stderr"] = tail
        return SandboxCrashed(
            f"{self.tool_id}: the sandbox exited unexpectedly (exit code {state.get('ExitCode')})",
            details=details,
        )

    def _final_state(self) -> dict[str, Any]:
        import docker.errors
        import requests.exceptions

        try:
            self.api.wait(self.id, timeout=10)
            state = self.api.inspect_container(self.id).get("State") or {}
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return {}
        return dict(state)

    def destroy(self) -> None:
        """Kill and remove the container (idempotent); close the attached socket."""
        if self.destroyed:
            return
        if self.shuts_down and self._answered and self._shut_down_destroyed():
            return
        self.destroyed = True
        owner = getattr(self.response, "_response", None)  # docker-py keeps the HTTP response
        closers = [self.sock.close, self.response.close] + ([owner.close] if owner else [])
        for closer in closers:
            with contextlib.suppress(Exception):  # closing a dead connection may fail
                closer()
        remove_container(self.api, self.id)
        for callback in self.on_destroy:
            with contextlib.suppress(Exception):
                callback()

    def _shut_down_destroyed(self) -> bool:
        """Ask the runner to run the plugin's `shutdown` hooks; True when that destroyed the
        container already (a timeout)."""
        self.shuts_down = False
        try:
            closed = self.request({"op": "close"}, CLOSE_LIMITS)
        except PasarError as error:  # the runner died or hung: removed all the same
            log.warning("sandbox: %s did not shut down: %s", self.tool_id, error.message)
            return self.destroyed
        result = closed.result if isinstance(closed.result, dict) else {}
        for failure in result.get("failures") or ():
            log.error("sandbox: %s failed to shut down: %s", self.tool_id, failure)
        return self.destroyed


def remove_container(api: APIClient, container_id: str) -> None:
    import docker.errors
    import requests.exceptions

    try:
        api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as error:
        if "already in progress" not in str(error):
            log.warning("could not remove sandbox container %s: %s", container_id[:12], error)
    except requests.exceptions.RequestException as error:
        log.warning("could not remove sandbox container %s: %s", container_id[:12], error)
