"""The workers' side of the sandbox queue: the RQ job function and the host that serves it.

`serve(request)` runs in a sandbox worker's thread (`pasar.sandbox_worker`), which sets
`CURRENT_HOST` to the process's one `SandboxHost`; the host owns the process's `SandboxClient`
(its warm containers outlive jobs) and turns every request into a JSON reply: a result or a
typed error, never an exception, so the job itself always succeeds and the worker goes on.

With no Docker daemon the host still answers, with `SANDBOX_UNAVAILABLE` saying how to start
one, and tries the daemon again at most every `RECONNECT_S` seconds.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pasar_core.errors import PasarError, SandboxCrashed, SandboxUnavailable
from pasar_core.sandbox.client import ContainerObserver, SandboxClient, SandboxResult
from pasar_core.sandbox.queue import REPLY_PREFIX, REPLY_TTL_S
from pasar_core.sandbox.requests import error_reply, ok_reply, python_tool_of
from pasar_core.sandbox.settings import SandboxSettings

log = logging.getLogger("pasar.sandbox")

RECONNECT_S = 5.0
Handler = Callable[["SandboxHost", Mapping[str, Any]], dict[str, Any]]


class SandboxHost:
    """A sandbox worker process's client and request handlers (thread-safe)."""

    def __init__(
        self,
        settings: SandboxSettings,
        *,
        image: str | None = None,
        on_container_created: ContainerObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._image = image
        self._observer = on_container_created
        self._clock = clock
        self._client: SandboxClient | None = None
        self._failure: SandboxUnavailable | None = None
        self._failed_at = 0.0
        self._lock = threading.Lock()
        self.handlers: dict[str, Handler] = {
            "python": _python,
            "plugin.manifest": _plugin_manifest,
            "plugin.invoke": _plugin_invoke,
            "plugin.install": _plugin_install,
        }

    def client(self) -> SandboxClient:
        """The started client; `SandboxUnavailable` while no daemon answers."""
        with self._lock:
            if self._client is not None:
                return self._client
            if self._failure is not None and self._clock() - self._failed_at < RECONNECT_S:
                raise self._failure
            client = SandboxClient(
                self.settings, image=self._image, on_container_created=self._observer
            )
            try:
                client.start()
            except SandboxUnavailable as error:
                client.close()
                self._failure, self._failed_at = error, self._clock()
                log.warning("sandbox worker: %s", error.message)
                raise
            self._client, self._failure = client, None
            return client

    def try_start(self) -> bool:
        """Start the client now (reaping orphans) if a daemon answers; False otherwise."""
        try:
            self.client()
        except SandboxUnavailable:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def handle(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The reply to one request; typed errors become error replies."""
        handler = self.handlers.get(str(request.get("op")))
        try:
            if handler is None:
                raise SandboxCrashed(f"unknown sandbox request {str(request.get('op'))[:50]!r}")
            return handler(self, request)
        except PasarError as error:
            return error_reply(error)
        except Exception:
            log.exception("sandbox worker: a request failed unexpectedly")
            return error_reply(SandboxCrashed("the sandbox worker failed on this call"))


def result_reply(result: SandboxResult) -> dict[str, Any]:
    return ok_reply(
        result.value,
        stdout=result.stdout,
        stderr=result.stderr,
        cold=result.cold,
        container=result.container_id[:12],
        calls=result.calls,
    )


def _python(host: SandboxHost, request: Mapping[str, Any]) -> dict[str, Any]:
    tool = python_tool_of(request)
    return result_reply(host.client().call_python(tool, request.get("args")))


def _plugin_workload(request: Mapping[str, Any], scope: str) -> Any:
    from pasar_core.sandboxed_plugins.install import workload

    plugin = request.get("plugin")
    if not isinstance(plugin, dict):
        raise SandboxCrashed("a plugin request without its plugin")
    try:
        return workload(
            str(plugin["name"]),
            str(plugin["image"]),
            int(plugin["revision"]),
            scope,
            tuple(str(host) for host in plugin.get("allow_hosts") or ()),
            tuple(str(host) for host in plugin.get("opened_hosts") or ()),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise SandboxCrashed(f"a malformed plugin request: {type(error).__name__}") from None


def _plugin_manifest(host: SandboxHost, request: Mapping[str, Any]) -> dict[str, Any]:
    from pasar_core.sandbox.workloads import MANIFEST_SCOPE

    return result_reply(
        host.client().call(_plugin_workload(request, MANIFEST_SCOPE), {"op": "manifest"})
    )


def _plugin_invoke(host: SandboxHost, request: Mapping[str, Any]) -> dict[str, Any]:
    scope = str(request.get("scope") or "")
    if not scope:
        raise SandboxCrashed("a plugin call without the user it serves")
    message = {"op": "invoke", "tool": request.get("tool"), "args": request.get("args"),
               "context": request.get("context") or {}}  # fmt: skip
    timeout = request.get("timeout_s")
    timeout_s = float(timeout) if isinstance(timeout, int | float) else None
    client = host.client()
    return result_reply(client.call(_plugin_workload(request, scope), message, timeout_s=timeout_s))


def _plugin_install(host: SandboxHost, request: Mapping[str, Any]) -> dict[str, Any]:
    import shutil
    import tempfile
    from pathlib import Path

    from pasar_core.sandboxed_plugins.install import build_and_read, wheel_from_request

    client = host.client()
    directory = Path(tempfile.mkdtemp(prefix="pasar-plugin-upload-"))
    try:
        built = build_and_read(wheel_from_request(request, directory), client)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return ok_reply(built.as_json())


CURRENT_HOST: contextvars.ContextVar[SandboxHost] = contextvars.ContextVar("pasar_sandbox_host")
"""Set by the sandbox worker around each job it performs."""


def serve(request: dict[str, Any]) -> None:
    """The RQ job: answer `request` on the job's reply list."""
    from rq import get_current_job

    job = get_current_job()
    if job is None:
        raise RuntimeError("pasar_core.sandbox.jobs.serve runs only as an RQ job")
    try:
        host = CURRENT_HOST.get()
    except LookupError:
        reply = error_reply(
            SandboxUnavailable(
                "this RQ worker is not a sandbox worker (pasar worker --queue sandbox)"
            )
        )
    else:
        reply = host.handle(request if isinstance(request, dict) else {})
    key = REPLY_PREFIX + job.id
    with job.connection.pipeline() as pipe:
        pipe.rpush(key, json.dumps(reply))
        pipe.expire(key, REPLY_TTL_S)
        pipe.execute()
