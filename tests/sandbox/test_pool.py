"""Warm containers: reuse, recycling (after N calls, when idle, on failure), the per-worker cap
under concurrency, and orphans of a killed worker reaped when the next one starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from docker.errors import NotFound
from pasar_core.errors import SandboxBusy
from pasar_core.sandbox.client import SandboxClient
from pasar_core.sandbox.limits import SandboxLimits
from pasar_core.sandbox.policy import LABEL_INSTANCE, LABEL_WORKER
from pasar_core.sandbox.workloads import PythonTool
from pasar_core.testing import DockerForTests

from tests.sandbox.conftest import ContainerAudit, EventLog, MakeSandbox

SMALL = SandboxLimits(memory_mb=48, cpus=0.25, pids=16, tmpfs_mb=1, timeout_s=20)
DOUBLE = PythonTool("probe:double", 1, "def run(args):\n    return args['n'] * 2\n", limits=SMALL)


def exists(pasar_docker: DockerForTests, container_id: str) -> bool:
    client = pasar_docker.client()
    try:
        client.api.inspect_container(container_id)
        return True
    except NotFound:
        return False
    finally:
        client.close()


def labelled(pasar_docker: DockerForTests, label: str) -> list[str]:
    client = pasar_docker.client()
    try:
        return [c["Id"] for c in client.api.containers(all=True, filters={"label": label})]
    finally:
        client.close()


def test_the_same_warm_container_serves_repeated_calls(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(calls_per_container=50)
    results = [sandbox.call_python(DOUBLE, {"n": n}) for n in range(5)]
    assert [r.value for r in results] == [0, 2, 4, 6, 8]
    assert [r.cold for r in results] == [True, False, False, False, False]
    assert {r.container_id for r in results} == {results[0].container_id}
    assert [r.calls for r in results] == [1, 2, 3, 4, 5]


def test_a_new_tool_version_gets_its_own_container(sandbox: SandboxClient) -> None:
    first = sandbox.call_python(DOUBLE, {"n": 1})
    v2 = PythonTool("probe:double", 2, "def run(args):\n    return args['n'] * 3\n", limits=SMALL)
    second = sandbox.call_python(v2, {"n": 1})
    assert (first.value, second.value) == (2, 3)
    assert second.cold
    assert second.container_id != first.container_id


def test_recycled_after_n_calls(make_sandbox: MakeSandbox, pasar_docker: DockerForTests) -> None:
    sandbox = make_sandbox(calls_per_container=3)
    results = [sandbox.call_python(DOUBLE, {"n": n}) for n in range(4)]
    first, fourth = results[0].container_id, results[3].container_id
    assert [r.container_id for r in results[:3]] == [first] * 3
    assert fourth != first
    assert results[3].cold
    sandbox.pool.close()  # waits for the retired container's removal
    assert not exists(pasar_docker, first)


def test_recycled_when_idle(make_sandbox: MakeSandbox, pasar_docker: DockerForTests) -> None:
    now = [1000.0]
    sandbox = make_sandbox(clock=lambda: now[0], idle_s=60)
    used = sandbox.call_python(DOUBLE, {"n": 1}).container_id
    now[0] += 59
    assert sandbox.sweep() == 0
    assert exists(pasar_docker, used)
    now[0] += 1
    assert sandbox.sweep() == 1
    assert not exists(pasar_docker, used)
    assert sandbox.call_python(DOUBLE, {"n": 1}).cold


def test_recycled_on_failure(sandbox: SandboxClient, pasar_docker: DockerForTests) -> None:
    crash = PythonTool(
        "probe:crash", 1, "import os\ndef run(args):\n    if args:\n        os._exit(1)\n    return 0\n",
        limits=SMALL,
    )  # fmt: skip
    warm = sandbox.call_python(crash, {})
    with pytest.raises(Exception, match="exited unexpectedly"):
        sandbox.call_python(crash, {"exit": True})
    assert not exists(pasar_docker, warm.container_id)
    assert sandbox.call_python(crash, {}).cold


def test_50_concurrent_calls_within_the_container_cap(
    make_sandbox: MakeSandbox, pasar_docker: DockerForTests
) -> None:
    sandbox = make_sandbox(max_containers=3, calls_per_container=10)
    tools = [
        PythonTool(f"probe:t{k}", 1, f"def run(args):\n    return [{k}, args['n']]\n", limits=SMALL)
        for k in range(4)
    ]  # four tools, three containers at most: warm reuse, eviction and recycling all happen

    def call(n: int) -> Any:
        return sandbox.call_python(tools[n % 4], {"n": n}).value

    log = EventLog(pasar_docker, f"{LABEL_INSTANCE}={sandbox.instance}")
    try:
        with ThreadPoolExecutor(max_workers=50) as workers:
            values = list(workers.map(call, range(50)))
        sandbox.close()
        log.wait_until(lambda: log.ids("destroy") == log.ids("create"))
    finally:
        log.close()

    assert values == [[n % 4, n] for n in range(50)]
    alive, most = 0, 0
    for event in log.events:  # in the daemon's order
        if event["Action"] == "create":
            alive += 1
            most = max(most, alive)
        elif event["Action"] == "destroy":
            alive -= 1
    assert most <= 3
    assert len(log.ids("create")) > 3  # the cap was reached and containers were replaced


def test_a_busy_worker_refuses_after_waiting(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(max_containers=1)
    sandbox.queue_wait_s = 0.5
    slow = PythonTool(
        "probe:slow", 1, "import time\ndef run(args):\n    time.sleep(args['s'])\n    return 1\n",
        limits=SMALL,
    )  # fmt: skip
    sandbox.call_python(slow, {"s": 0})  # warm, so the next call is busy at once
    entered = threading.Event()
    outcome: list[Any] = []

    def hold() -> None:
        entered.set()
        outcome.append(sandbox.call_python(slow, {"s": 3}).value)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait()
    while sandbox.pool.stats().idle:  # until the holder has taken the only container
        time.sleep(0.01)
    with pytest.raises(SandboxBusy):
        sandbox.call_python(DOUBLE, {"n": 1})
    holder.join()
    assert outcome == [1]


ORPHAN_MAKER = textwrap.dedent(
    """
    import sys, time
    from pasar_core.sandbox.client import SandboxClient
    from pasar_core.sandbox.settings import SandboxSettings
    from pasar_core.sandbox.workloads import PythonTool

    docker_host, worker, image = sys.argv[1:4]
    client = SandboxClient(SandboxSettings(docker_host=docker_host, worker_name=worker), image=image)
    client.start(janitor=False)
    result = client.call_python(PythonTool("probe:orphan", 1, "def run(args):\\n    return 1\\n"), {})
    print(result.container_id, flush=True)
    time.sleep(600)
    """
)


def test_orphans_of_a_killed_worker_are_reaped_at_start(
    make_sandbox: MakeSandbox, pasar_docker: DockerForTests, container_audit: ContainerAudit
) -> None:
    live = make_sandbox()
    live_container = live.call_python(DOUBLE, {"n": 1}).container_id

    worker = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_MAKER, pasar_docker.docker_host, pasar_docker.worker_name,
         pasar_docker.image],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    try:
        assert worker.stdout is not None
        orphan = worker.stdout.readline().strip()
        assert orphan, "the worker process did not start its container"
        container_audit.record_id(orphan)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()
    assert exists(pasar_docker, orphan)  # a killed worker removes nothing

    make_sandbox()  # a new worker of the same name starts and reaps

    assert not exists(pasar_docker, orphan)
    assert exists(pasar_docker, live_container)  # its owner is alive: left alone
    mine = labelled(pasar_docker, f"{LABEL_WORKER}={pasar_docker.worker_name}")
    assert mine == [live_container]


def _gated_destroy(monkeypatch: pytest.MonkeyPatch, hold: Any) -> list[str]:
    """Make `SandboxContainer.destroy` call `hold(container)` first; returns the ids it saw."""
    from pasar_core.sandbox.container import SandboxContainer

    real = SandboxContainer.destroy
    seen: list[str] = []

    def destroy(self: SandboxContainer) -> None:
        if not self.destroyed:
            seen.append(self.id)
            hold(self)
        real(self)

    monkeypatch.setattr(SandboxContainer, "destroy", destroy)
    return seen


def _idle_containers(sandbox: SandboxClient) -> list[Any]:
    return [c for containers in sandbox.pool._idle.values() for c in containers]


def test_an_evicted_container_with_shutdown_hooks_is_closed_off_the_callers_path(
    make_sandbox: MakeSandbox, pasar_docker: DockerForTests, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = make_sandbox(max_containers=1)
    sandbox.call_python(DOUBLE, {"n": 1})
    (warm,) = _idle_containers(sandbox)
    warm.shuts_down = True  # as a sandboxed plugin's: its runner is asked to close first
    release = threading.Event()
    seen = _gated_destroy(monkeypatch, lambda _container: release.wait(60))
    other = PythonTool("probe:other", 1, "def run(args):\n    return 'other'\n", limits=SMALL)
    # The cap is one container: this call evicts the warm one, and is answered while the
    # evicted container's shutdown is still held up.
    assert sandbox.call_python(other, {}).value == "other"
    assert seen == [warm.id]
    assert not release.is_set()
    assert sandbox.pool.stats().closing == 1
    assert exists(pasar_docker, warm.id)
    release.set()
    while sandbox.pool.stats().closing:  # the eviction's thread ends once it is removed
        time.sleep(0.01)
    assert not exists(pasar_docker, warm.id)


def test_closing_removes_idle_containers_concurrently(
    make_sandbox: MakeSandbox, pasar_docker: DockerForTests, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = make_sandbox(max_containers=3)
    for k in range(3):
        tool = PythonTool(f"probe:c{k}", 1, f"def run(args):\n    return {k}\n", limits=SMALL)
        sandbox.call_python(tool, {})
    ids = [container.id for container in _idle_containers(sandbox)]
    assert len(ids) == 3
    # Each removal waits until all three have begun: one after another, none would get past.
    together = threading.Barrier(3, timeout=60)
    passed: list[str] = []

    def hold(container: Any) -> None:
        together.wait()
        passed.append(container.id)

    _gated_destroy(monkeypatch, hold)
    sandbox.pool.close()
    assert sorted(passed) == sorted(ids)
    assert not any(exists(pasar_docker, container_id) for container_id in ids)


def test_closing_kills_containers_whose_shutdown_outlives_the_bound(
    make_sandbox: MakeSandbox, pasar_docker: DockerForTests, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = make_sandbox()
    sandbox.call_python(DOUBLE, {"n": 1})
    (stuck,) = _idle_containers(sandbox)
    release = threading.Event()
    _gated_destroy(monkeypatch, lambda _container: release.wait(60))  # a shutdown that hangs
    monkeypatch.setattr("pasar_core.sandbox.pool.CLOSE_ALL_S", 0.2)
    try:
        sandbox.pool.close()  # returns at the bound, having killed what was left
        assert not exists(pasar_docker, stuck.id)
    finally:
        release.set()
