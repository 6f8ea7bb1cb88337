"""The sandbox client of a sandbox worker: run workloads in hardened, warm Docker containers.

Only sandbox workers use this (the API process never talks to Docker). One client per worker
process; it is thread-safe, so a worker may serve several calls at once up to its container cap.

    with SandboxClient(SandboxSettings.from_env()) as sandbox:     # connects, builds, reaps
        result = sandbox.call_python(PythonTool("acme:total", 1, source), {"items": [1, 2]})
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pasar_core.errors import PasarError, SandboxCrashed, SandboxUnavailable
from pasar_core.sandbox import images
from pasar_core.sandbox.container import SandboxContainer, remove_container
from pasar_core.sandbox.daemon import HOW_TO_START, connect
from pasar_core.sandbox.egress import RELAY_COMMAND, EgressProxy, EgressRules
from pasar_core.sandbox.owners import owner_alive, this_process
from pasar_core.sandbox.policy import (
    LABEL_INSTANCE,
    LABEL_OWNER,
    LABEL_WORKER,
    SANDBOX_USER,
    ContainerPolicy,
)
from pasar_core.sandbox.pool import WarmPool
from pasar_core.sandbox.settings import SandboxSettings
from pasar_core.sandbox.workloads import PythonTool, Workload, workload_labels

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger("pasar.sandbox")

ContainerObserver = Callable[[Mapping[str, Any]], None]
"""Called with `docker inspect` of each container this client creates, before it starts."""


@dataclass(frozen=True, slots=True)
class SandboxResult:
    value: Any
    stdout: str
    stderr: str
    container_id: str
    cold: bool
    calls: int
    """How many calls the container has served, this one included."""


class SandboxClient:
    def __init__(
        self,
        settings: SandboxSettings,
        *,
        docker_client: DockerClient | None = None,
        image: str | None = None,
        on_container_created: ContainerObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        queue_wait_s: float = 60.0,
        egress: EgressProxy | None = None,
    ) -> None:
        """`image`: the base image tag (default: build or find `sandbox_images/python`);
        `egress`: the proxy of workloads with allow_hosts (default: one of this client's)."""
        self.settings = settings
        self.instance = uuid.uuid4().hex
        self.owner = this_process()
        self.queue_wait_s = queue_wait_s
        self._docker = docker_client
        self._owns_docker = docker_client is None
        self._image = image
        self._observer = on_container_created
        self._clock = clock
        self.pool = WarmPool(
            max_containers=settings.max_containers,
            calls_per_container=settings.calls_per_container,
            idle_s=settings.idle_s,
            clock=clock,
        )
        self.egress = egress or EgressProxy()
        self._owns_egress = egress is None
        self._janitor: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, *, janitor: bool = True) -> SandboxClient:
        """Connect, make sure the base image exists, reap orphans, start the idle janitor."""
        if self._docker is None:
            self._docker = connect(self.settings)
        if self._image is None:
            definition = images.load_definition(images.DEFAULT_IMAGE, self.settings.images_dir)
            self._image = images.ensure_image(self._docker, definition).ref.tag
        reaped = self.reap_orphans()
        if reaped:
            log.info("removed %d orphaned sandbox containers of %s", reaped, self.worker_name)
        if janitor and self._janitor is None:
            self._janitor = threading.Thread(
                target=self._sweep_until_stopped, name="pasar-sandbox-janitor", daemon=True
            )
            self._janitor.start()
        return self

    def close(self) -> None:
        """Remove every container of this client (busy ones as their calls end)."""
        self._stopping.set()
        if self._janitor is not None:
            self._janitor.join(timeout=10)
        self.pool.close()
        if self._owns_egress:
            self.egress.close()
        if self._owns_docker and self._docker is not None:
            self._docker.close()

    def __enter__(self) -> SandboxClient:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def worker_name(self) -> str:
        return self.settings.worker_name

    @property
    def docker(self) -> DockerClient:
        if self._docker is None:
            raise SandboxUnavailable(f"the sandbox client was not started: {HOW_TO_START}")
        return self._docker

    @property
    def image(self) -> str:
        if self._image is None:
            raise SandboxUnavailable("the sandbox client was not started")
        return self._image

    def reap_orphans(self) -> int:
        """Remove this worker name's containers whose owning process is gone (a crashed or
        killed worker); containers of live processes of the same name are left alone."""
        containers = self.docker.api.containers(
            all=True, filters={"label": f"{LABEL_WORKER}={self.worker_name}"}
        )
        reaped = 0
        for container in containers:
            owner = (container.get("Labels") or {}).get(LABEL_OWNER)
            if owner == self.owner or owner_alive(owner):
                continue
            remove_container(self.docker.api, container["Id"])
            reaped += 1
        return reaped

    def sweep(self) -> int:
        """Retire containers idle for longer than `idle_s`."""
        return self.pool.sweep()

    def _sweep_until_stopped(self) -> None:
        interval = max(1.0, min(self.settings.idle_s / 2, 30.0))
        while not self._stopping.wait(interval):
            try:
                self.pool.sweep()
            except Exception:
                log.exception("sandbox janitor: sweeping idle containers failed")

    # -- calls --------------------------------------------------------------------------------

    def call_python(self, tool: PythonTool, args: Any) -> SandboxResult:
        """Run a Python custom tool's entrypoint with `args`; its JSON result, or a typed error
        (`pasar_core.errors`: SANDBOX_* for the sandbox, TOOL_* for the tool's own failures)."""
        return self.call(tool, {"op": "call", "args": args})

    async def acall_python(self, tool: PythonTool, args: Any) -> SandboxResult:
        return await asyncio.to_thread(self.call_python, tool, args)

    def call(
        self, workload: Workload, request: Mapping[str, Any], *, timeout_s: float | None = None
    ) -> SandboxResult:
        """Send one request to a container serving `workload` (warm if one is idle);
        `timeout_s` replaces the workload's wall clock for this request only."""
        limits = workload.limits.within(self.settings.maxima)
        policy = ContainerPolicy(
            image=workload.image or self.image,
            limits=limits,
            network=workload.network,
            labels={
                LABEL_WORKER: self.worker_name,
                LABEL_INSTANCE: self.instance,
                LABEL_OWNER: self.owner,
                **workload_labels(workload),
            },
        )
        key = (policy.image, workload.pool_key())
        container, cold = self.pool.acquire(
            key, lambda: self._start(workload, policy, key), wait_s=self.queue_wait_s
        )
        reusable = False
        call_limits = limits
        if timeout_s is not None:
            call_limits = replace(limits, timeout_s=min(timeout_s, self.settings.maxima.timeout_s))
        try:
            reply = container.request(dict(request), call_limits)
            container.calls += 1
            reusable = reply.keeps_container
            if not reply.ok:
                reply.raise_error(workload.tool_id)
            return SandboxResult(
                value=reply.result,
                stdout=reply.stdout,
                stderr=reply.stderr,
                container_id=container.id,
                cold=cold,
                calls=container.calls,
            )
        finally:
            self.pool.release(container, reusable=reusable)

    def _start(self, workload: Workload, policy: ContainerPolicy, key: object) -> SandboxContainer:
        """Create, check, attach and start a container, then load the workload into it."""
        import docker.errors
        import requests.exceptions

        api = self.docker.api
        container_id: str | None = None
        try:
            container_id = str(api.create_container(**policy.create_arguments(api))["Id"])
            inspected = api.inspect_container(container_id)
            problems = policy.problems(inspected)
            if problems:
                raise SandboxUnavailable(
                    "the Docker daemon did not apply the sandbox policy: " + "; ".join(problems),
                    details={"problems": problems},
                )
            if self._observer is not None:
                self._observer(inspected)
            sock = api.attach_socket(
                container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            api.start(container_id)
        except PasarError:
            if container_id:
                remove_container(api, container_id)
            raise
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            if container_id:
                remove_container(api, container_id)
            log.warning("sandbox: starting a container for %s failed: %s", workload.tool_id, error)
            raise SandboxUnavailable(
                f"the Docker daemon could not start a sandbox container: {HOW_TO_START}",
                details={"tool": workload.tool_id},
            ) from None
        now = self._clock()
        container = SandboxContainer(
            api=api,
            id=container_id,
            sock=sock._sock,
            response=sock,
            key=key,
            tool_id=workload.tool_id,
            created_at=now,
            last_used=now,
        )
        try:
            load = workload.load_request(policy.limits)
            if workload.network.allow_hosts:
                load["egress_relay_pid"] = self._start_relay(container, workload)
            reply = container.request(load, policy.limits)
            if not reply.ok:
                reply.raise_error(workload.tool_id)
            if not reply.clean:
                raise SandboxCrashed(
                    f"{workload.tool_id}: loading the tool left processes or threads running",
                    details={"tool": workload.tool_id},
                )
            container.shuts_down = load.get("kind") == "plugin"  # its `shutdown` hooks
        except BaseException:
            container.destroy()
            raise
        return container

    def _start_relay(self, container: SandboxContainer, workload: Workload) -> int:
        """Start the egress relay in `container` and serve it; the relay's pid in there."""
        import docker.errors
        import requests.exceptions

        try:
            exec_id = container.api.exec_create(
                container.id, list(RELAY_COMMAND), stdin=True, stdout=True, stderr=True,
                user=SANDBOX_USER,
            )["Id"]  # fmt: skip
            sock = container.api.exec_start(exec_id, socket=True)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            log.warning("sandbox: starting the egress relay of %s failed: %s", workload.tool_id,
                        error)  # fmt: skip
            raise SandboxUnavailable(
                f"{workload.tool_id}: the Docker daemon could not start the egress relay",
                details={"tool": workload.tool_id},
            ) from None
        try:
            channel = self.egress.open_channel(sock, EgressRules.of(workload.network),
                                               workload.tool_id)  # fmt: skip
        except BaseException:
            for closer in (sock.close, getattr(sock, "_sock", sock).close):
                with contextlib.suppress(Exception):
                    closer()
            raise
        container.on_destroy.append(channel.close)  # the relay ends with its container too
        return channel.relay_pid
