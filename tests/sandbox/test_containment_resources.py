"""Resource containment: each probe ends as a typed error, the container is gone, and the
worker serves the next call."""

from __future__ import annotations

import errno
from typing import Any

import pytest
from docker.errors import NotFound
from pasar_core.errors import (
    SandboxMemory,
    SandboxOutputTooLarge,
    SandboxTimeout,
    ToolRaised,
)
from pasar_core.sandbox.client import SandboxClient
from pasar_core.sandbox.limits import SandboxLimits
from pasar_core.sandbox.workloads import PythonTool
from pasar_core.testing import DockerForTests

SMALL = SandboxLimits(memory_mb=64, cpus=0.5, pids=32, tmpfs_mb=4, timeout_s=10)
HEALTHY = PythonTool("probe:healthy", 1, "def run(args):\n    return 'fine'\n", limits=SMALL)


def tool(source: str, **limits: Any) -> PythonTool:
    from dataclasses import replace

    return PythonTool("probe:hostile", 1, source, limits=replace(SMALL, **limits))


def containers_of(pasar_docker: DockerForTests, sandbox: SandboxClient) -> list[str]:
    client = pasar_docker.client()
    try:
        found = client.api.containers(
            all=True, filters={"label": f"pasar.sandbox.instance={sandbox.instance}"}
        )
        return [c["Id"] for c in found]
    finally:
        client.close()


def assert_gone(pasar_docker: DockerForTests, container_id: str) -> None:
    client = pasar_docker.client()
    try:
        with pytest.raises(NotFound):
            client.api.inspect_container(container_id)
    finally:
        client.close()


def assert_worker_fine(sandbox: SandboxClient) -> None:
    assert sandbox.call_python(HEALTHY, {}).value == "fine"


def test_fork_bomb_stops_at_the_pids_limit(
    sandbox: SandboxClient, pasar_docker: DockerForTests
) -> None:
    counted = """
import os, time
def run(args):
    forks = 0
    try:
        while True:
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
            forks += 1
    except OSError as error:
        return {"forks": forks, "errno": error.errno}
"""
    result = sandbox.call_python(tool(counted), {})
    assert result.value["errno"] == errno.EAGAIN
    assert 0 < result.value["forks"] < SMALL.pids  # init and the runner hold two of the pids
    assert_gone(pasar_docker, result.container_id)  # it left processes behind: retired

    with pytest.raises(ToolRaised) as caught:
        sandbox.call_python(
            tool("import os\ndef run(args):\n    while True:\n        os.fork()\n"), {}
        )
    assert "BlockingIOError" in caught.value.message
    assert containers_of(pasar_docker, sandbox) == []
    assert_worker_fine(sandbox)


def test_memory_hog_is_oom_killed(sandbox: SandboxClient, pasar_docker: DockerForTests) -> None:
    hog = "def run(args):\n    chunks = []\n    while True:\n        chunks.append(b'x' * (1 << 20))\n"
    with pytest.raises(SandboxMemory) as caught:
        sandbox.call_python(tool(hog), {})
    assert caught.value.code == "SANDBOX_MEMORY"
    assert caught.value.details["memory_mb"] == SMALL.memory_mb
    assert containers_of(pasar_docker, sandbox) == []
    assert_worker_fine(sandbox)


def test_cpu_spin_past_the_timeout_is_killed(
    sandbox: SandboxClient, pasar_docker: DockerForTests
) -> None:
    warm = sandbox.call_python(
        tool("def run(args):\n    while args:\n        pass\n", timeout_s=1), []
    )
    with pytest.raises(SandboxTimeout) as caught:
        sandbox.call_python(
            tool("def run(args):\n    while args:\n        pass\n", timeout_s=1), [1]
        )
    assert caught.value.code == "SANDBOX_TIMEOUT"
    assert caught.value.details["timeout_s"] == 1
    assert_gone(pasar_docker, warm.container_id)  # the same (warm) container served the spin
    assert containers_of(pasar_docker, sandbox) == []
    assert_worker_fine(sandbox)


def test_root_filesystem_is_read_only(sandbox: SandboxClient) -> None:
    source = """
import os
def attempt(action):
    try:
        action()
        return "written"
    except OSError as error:
        return error.errno
def run(args):
    with open("/proc/self/mounts") as mounts:
        root = [line.split()[3].split(",")[0] for line in mounts if line.split()[1] == "/"]
    return {
        "root mount": root,
        "/var/tmp is world-writable": oct(os.stat("/var/tmp").st_mode & 0o7777),
        "new file in /var/tmp": attempt(lambda: open("/var/tmp/probe", "w").close()),
        "mkdir in /var/tmp": attempt(lambda: os.mkdir("/var/tmp/probe-dir")),
        "append to the runner": attempt(lambda: open("/opt/pasar/runner.py", "a").close()),
        "new file in /": attempt(lambda: open("/probe", "w").close()),
    }
"""
    result = sandbox.call_python(tool(source), {}).value
    assert result == {
        "root mount": ["ro"],
        "/var/tmp is world-writable": "0o1777",
        "new file in /var/tmp": errno.EROFS,  # only the read-only mount stops this one
        "mkdir in /var/tmp": errno.EROFS,
        "new file in /": errno.EROFS,
        "append to the runner": errno.EACCES,  # root's file: refused before the mount is asked
    }


def test_tmp_is_capped(sandbox: SandboxClient) -> None:
    source = """
def run(args):
    written = 0
    try:
        with open("/tmp/fill", "wb") as handle:
            for _ in range(args["mb"]):
                handle.write(b"x" * (1 << 20))
                handle.flush()
                written += 1
    except OSError as error:
        return {"written_mb": written, "errno": error.errno}
    return {"written_mb": written}
"""
    small = sandbox.call_python(tool(source), {"mb": 2}).value
    assert small == {"written_mb": 2}
    full = sandbox.call_python(tool(source), {"mb": 16}).value
    assert full["errno"] == errno.ENOSPC
    assert full["written_mb"] <= SMALL.tmpfs_mb


def test_stdout_flood_hits_the_stdout_cap(sandbox: SandboxClient) -> None:
    flood = "def run(args):\n    while True:\n        print('x' * 1000)\n"
    with pytest.raises(SandboxOutputTooLarge) as caught:
        sandbox.call_python(tool(flood, stdout_bytes=10_000), {})
    assert caught.value.details["stream"] == "stdout"
    assert caught.value.details["limit"] == 10_000


def test_a_caught_overflow_is_still_an_overflow(sandbox: SandboxClient) -> None:
    sneaky = "def run(args):\n    try:\n        print('x' * 20_000)\n    except BaseException:\n        pass\n    return 'done'\n"
    with pytest.raises(SandboxOutputTooLarge):
        sandbox.call_python(tool(sneaky, stdout_bytes=10_000), {})


def test_result_flood_hits_the_result_cap(sandbox: SandboxClient) -> None:
    with pytest.raises(SandboxOutputTooLarge) as caught:
        sandbox.call_python(
            tool("def run(args):\n    return 'x' * 200_000\n", result_bytes=100_000), {}
        )
    assert caught.value.details["stream"] == "result"
    assert sandbox.call_python(
        tool("def run(args):\n    return 'x' * 99_000\n", result_bytes=100_000), {}
    )


def test_raw_stderr_flood_is_cut_by_the_worker(
    sandbox: SandboxClient, pasar_docker: DockerForTests
) -> None:
    flood = "import os\ndef run(args):\n    while True:\n        os.write(2, b'x' * 10_000)\n"
    with pytest.raises(SandboxOutputTooLarge) as caught:
        sandbox.call_python(tool(flood, stderr_bytes=50_000), {})
    assert caught.value.details["stream"] == "stderr"
    assert containers_of(pasar_docker, sandbox) == []


def test_a_reply_line_past_the_cap_is_cut_by_the_worker(
    sandbox: SandboxClient, pasar_docker: DockerForTests
) -> None:
    """Bypassing the runner: write straight to its reply descriptor, without a newline."""
    forged = """
import os
def run(args):
    for fd in map(int, os.listdir("/proc/self/fd")):
        if fd > 2:
            try:
                while True:
                    os.write(fd, b"x" * 65536)
            except OSError:
                pass
"""
    limits = {"result_bytes": 10_000, "stdout_bytes": 1_000, "stderr_bytes": 1_000}
    with pytest.raises(SandboxOutputTooLarge) as caught:
        sandbox.call_python(tool(forged, **limits), {})
    assert caught.value.details["stream"] == "its reply"
    assert containers_of(pasar_docker, sandbox) == []
    assert_worker_fine(sandbox)
