"""Sandbox tests run against a real Docker daemon (the session's `pasar_docker`).

Every container of the session is inspected as the daemon creates it (a watcher on its events,
which sees the containers of sandbox worker processes and of the CLI too) and audited at the end of
the session against the hardening, independently of pasar's own checks; none may escape the audit,
and none may be left behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest
from pasar_core.sandbox.client import SandboxClient
from pasar_core.sandbox.egress import EgressProxy
from pasar_core.sandbox.jobs import SandboxHost
from pasar_core.sandbox.policy import LABEL_INSTANCE, LABEL_SANDBOX, LABEL_WORKER
from pasar_core.sandbox.settings import SandboxSettings
from pasar_core.settings import Settings
from pasar_core.testing import DockerForTests
from starlette.testclient import TestClient

if TYPE_CHECKING:
    from pasar.sandbox_worker import SandboxWorkerPool

ALLOWED_ENV = {"PATH", "LANG", "HOME", "PYTHONDONTWRITEBYTECODE"}
PROXY_ENV = {name: "http://127.0.0.1:3128" for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                                         "https_proxy")}  # fmt: skip
"""What a tool with allow_hosts gets: its egress relay, on the container's own loopback."""


class ContainerAudit:
    """`docker inspect` of every sandbox container this session created, whoever created it.

    A watcher on the daemon's events inspects each container labelled with one of the session's
    worker names (`<session>` and `<session>-...`: the sandbox worker processes and the CLI's
    manifest read included) the moment it is created; in-process clients also record theirs
    before they start them (`record`)."""

    def __init__(self, docker: DockerForTests) -> None:
        self.docker = docker
        self.inspected: dict[str, Mapping[str, Any]] = {}
        self.vanished: set[str] = set()
        self._lock = threading.Lock()
        self._client = docker.client()
        self.log = EventLog(docker, LABEL_SANDBOX, on_event=self._on_event)

    def ours(self, labels: Mapping[str, str]) -> bool:
        worker = labels.get(LABEL_WORKER, "")
        session = self.docker.worker_name
        return worker == session or worker.startswith(session + "-")

    def _on_event(self, event: Mapping[str, Any]) -> None:
        if event.get("Action") != "create" or not self.ours(event["Actor"]["Attributes"]):
            return
        import docker.errors

        try:
            self.record(self._client.api.inspect_container(event["id"]))
        except docker.errors.NotFound:
            with self._lock:
                self.vanished.add(str(event["id"]))

    def created(self) -> set[str]:
        return {
            e["id"] for e in list(self.log.events)
            if e.get("Action") == "create" and self.ours(e["Actor"]["Attributes"])
        }  # fmt: skip

    def record(self, inspected: Mapping[str, Any]) -> None:
        with self._lock:
            self.inspected[str(inspected["Id"])] = inspected

    def record_id(self, container_id: str) -> None:
        self.record(self._client.api.inspect_container(container_id))

    def remaining(self) -> list[str]:
        containers = self._client.api.containers(all=True, filters={"label": LABEL_SANDBOX})
        return [c["Id"] for c in containers if self.ours(c.get("Labels") or {})]

    def close(self) -> None:
        self.log.close()
        self._client.close()


def hardening_problems(inspected: Mapping[str, Any]) -> list[str]:
    """The suite's own reading of the hardening, written apart from pasar_core's policy."""
    host = inspected["HostConfig"]
    config = inspected["Config"]
    problems = []

    def expect(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    expect(host["ReadonlyRootfs"] is True, "root filesystem is writable")
    expect(host["CapDrop"] == ["ALL"], f"CapDrop {host['CapDrop']}")
    expect(not host.get("CapAdd"), f"CapAdd {host.get('CapAdd')}")
    expect(host["SecurityOpt"] == ["no-new-privileges"], f"SecurityOpt {host['SecurityOpt']}")
    expect(host["NetworkMode"] == "none", f"NetworkMode {host['NetworkMode']}")
    expect(host["Privileged"] is False, "privileged")
    expect(isinstance(host["PidsLimit"], int) and host["PidsLimit"] > 0, "no pids limit")
    expect(host["Memory"] > 0 and host["MemorySwap"] == host["Memory"], "memory/swap limit")
    expect(host["NanoCpus"] > 0, "no CPU limit")
    expect(not host.get("Binds") and not host.get("Mounts"), "host mounts")
    expect(not host.get("VolumesFrom") and not host.get("Devices"), "volumes or devices")
    expect(inspected.get("Mounts") in ([], None), f"Mounts {inspected.get('Mounts')}")
    tmpfs = host.get("Tmpfs") or {}
    expect(list(tmpfs) == ["/tmp"] and "size=" in tmpfs["/tmp"], f"Tmpfs {tmpfs}")
    user = config.get("User") or ""
    expect(user.split(":")[0] not in ("", "0", "root"), f"user {user!r}")
    expect(host["PidMode"] in ("", "private"), f"PidMode {host['PidMode']}")
    expect(host["IpcMode"] in ("none", "private"), f"IpcMode {host['IpcMode']}")
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    expect(set(env) <= ALLOWED_ENV | set(PROXY_ENV), f"environment {sorted(env)}")
    proxies = {name: value for name, value in env.items() if name in PROXY_ENV}
    expect(proxies in ({}, PROXY_ENV), f"proxy variables {proxies}")  # the relay on loopback
    expect("docker.sock" not in str(inspected), "the Docker socket is mentioned")
    labels = config.get("Labels") or {}
    for label in ("pasar.sandbox", "pasar.tool.id", "pasar.tool.version", LABEL_WORKER):
        expect(label in labels, f"label {label} missing")
    return problems


class EventLog:
    """The daemon's container events for `label`, as they happen (the daemon's own event
    history keeps only the last 256, too few for a whole suite); `on_event` sees each one first."""

    def __init__(
        self,
        docker: DockerForTests,
        label: str,
        on_event: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.client = docker.client()
        self.events: list[dict[str, Any]] = []
        self._on_event = on_event
        self._stream = self.client.events(
            decode=True, filters={"type": "container", "label": label}
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self._stream:
                if self._on_event is not None:
                    self._on_event(event)
                self.events.append(event)
        except Exception:  # the stream closed under the reader
            return

    def ids(self, action: str) -> set[str]:
        return {e["id"] for e in list(self.events) if e.get("Action") == action}

    def wait_until(self, predicate: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 30
        while not predicate():
            assert time.monotonic() < deadline, "the daemon's events did not arrive"
            time.sleep(0.05)

    def close(self) -> None:
        self._stream.close()
        self._thread.join(timeout=10)
        self.client.close()


def _remaining(docker: DockerForTests, label: str) -> list[str]:
    client = docker.client()
    try:
        return [c["Id"] for c in client.api.containers(all=True, filters={"label": label})]
    finally:
        client.close()


AUDIT = pytest.StashKey[ContainerAudit]()


@pytest.fixture(scope="session")
def pasar_docker(
    pasar_docker: DockerForTests, request: pytest.FixtureRequest
) -> Iterator[DockerForTests]:
    """The session's daemon, audited: whichever test first needs Docker starts the audit, and
    at the end of the session every container of the session must have been inspected, be
    hardened, and be gone."""
    audit = ContainerAudit(pasar_docker)
    request.config.stash[AUDIT] = audit
    try:
        yield pasar_docker
        # Every container recorded in process was created, so its event must show up.
        audit.log.wait_until(lambda: set(audit.inspected) <= audit.created())
        created = audit.created()
        unaudited = created - set(audit.inspected)
        failures = {cid[:12]: hardening_problems(i) for cid, i in audit.inspected.items()}
        left = audit.remaining()
    finally:
        audit.close()
    assert not unaudited, (
        f"containers gone before the audit could inspect them: {sorted(unaudited)}"
    )
    failures = {cid: problems for cid, problems in failures.items() if problems}
    assert not failures, f"containers that were not hardened: {failures}"
    assert not left, f"sandbox containers left behind after the suite: {left}"


@pytest.fixture
def container_audit(pasar_docker: DockerForTests, request: pytest.FixtureRequest) -> ContainerAudit:
    return request.config.stash[AUDIT]


@pytest.fixture
def sandbox_settings(pasar_docker: DockerForTests) -> SandboxSettings:
    """Small containers: the machine's 2 cores are shared."""
    return SandboxSettings(
        docker_host=pasar_docker.docker_host,
        worker_name=pasar_docker.worker_name,
        max_containers=3,
        calls_per_container=50,
        idle_s=300,
    )


MakeSandbox = Callable[..., SandboxClient]


@pytest.fixture
def make_sandbox(
    pasar_docker: DockerForTests, container_audit: ContainerAudit, sandbox_settings: SandboxSettings
) -> Iterator[MakeSandbox]:
    """make_sandbox(**settings_overrides, clock=..., egress=...) -> a started client, closed after
    the test; no container of it may remain."""
    clients: list[SandboxClient] = []

    def make(
        clock: Callable[[], float] = time.monotonic,
        egress: EgressProxy | None = None,
        **overrides: Any,
    ) -> SandboxClient:
        from dataclasses import replace

        client = SandboxClient(
            replace(sandbox_settings, **overrides),
            image=pasar_docker.image,
            on_container_created=container_audit.record,
            clock=clock,
            egress=egress,
        )
        clients.append(client)
        return client.start(janitor=False)

    yield make
    for client in clients:
        client.close()
    for client in clients:
        left = _remaining(pasar_docker, f"{LABEL_INSTANCE}={client.instance}")
        assert not left, f"containers left behind by a closed client: {left}"


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> SandboxClient:
    return make_sandbox()


# -- the whole path: sandbox queue (a real Redis), sandbox workers (real rq workers), the app ---


@pytest.fixture(scope="session")
def sandbox_redis_url() -> Iterator[str]:
    from tests.support.redis_server import redis_server

    with redis_server() as url:
        yield url


@pytest.fixture
def sandbox_workers(
    pasar_docker: DockerForTests,
    container_audit: ContainerAudit,
    sandbox_settings: SandboxSettings,
    sandbox_redis_url: str,
) -> Iterator[SandboxWorkerPool]:
    """Three rq sandbox workers in this process (threads sharing one host, as `pasar worker
    --queue sandbox` runs them), on a flushed queue; no container may outlive them."""
    from redis import Redis

    from pasar.sandbox_worker import SandboxWorkerPool

    Redis.from_url(sandbox_redis_url).flushdb()
    host = SandboxHost(
        sandbox_settings, image=pasar_docker.image, on_container_created=container_audit.record
    )
    pool = SandboxWorkerPool(sandbox_redis_url, sandbox_settings, host=host, threads=3).start()
    yield pool
    pool.stop()
    assert not pool.running
    left = _remaining(pasar_docker, f"{LABEL_WORKER}={pasar_docker.worker_name}")
    assert not left, f"containers left behind by the sandbox workers: {left}"


@pytest.fixture
def tools_settings(
    pasar_settings: Settings, sandbox_settings: SandboxSettings, sandbox_redis_url: str
) -> Settings:
    return pasar_settings.with_overrides(
        sandbox=sandbox_settings, sandbox_redis_url=sandbox_redis_url
    )


@pytest.fixture
def tools_client(
    tools_settings: Settings, sandbox_workers: SandboxWorkerPool
) -> Iterator[TestClient]:
    from pasar.app import create_app

    with TestClient(create_app(tools_settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def tools_user(tools_client: TestClient) -> Callable[..., dict[str, str]]:
    from pasar_core.testing import TEST_PASSWORD

    def make(email: str | None = None) -> dict[str, str]:
        import uuid

        credentials = {"email": email or f"u-{uuid.uuid4().hex[:10]}@example.com",
                       "password": TEST_PASSWORD}  # fmt: skip
        assert tools_client.post("/auth/signup", json=credentials).status_code == 201
        token = tools_client.post("/auth/token", json=credentials).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    return make
