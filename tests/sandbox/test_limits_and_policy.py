"""A tool's limits against the operator's maxima, and no daemon at all."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pasar_core.errors import SandboxUnavailable, StartupError, ValidationFailed
from pasar_core.sandbox.client import SandboxClient
from pasar_core.sandbox.limits import SandboxLimits
from pasar_core.sandbox.settings import DEFAULT_MAXIMA, SandboxSettings
from pasar_core.settings import Settings

from tests.support.servers import free_port

MAXIMA = SandboxLimits(memory_mb=256, cpus=1.0, pids=64, tmpfs_mb=32, timeout_s=30)


def test_a_tools_limits_within_the_maxima() -> None:
    limits = SandboxLimits.from_tool({"memory_mb": 256, "cpus": 0.5}, timeout_s=10, maxima=MAXIMA)
    assert (limits.memory_mb, limits.cpus, limits.timeout_s) == (256, 0.5, 10)
    assert limits.pids == SandboxLimits().pids


@pytest.mark.parametrize(
    ("limits", "path", "message"),
    [
        ({"memory_mb": 4096}, "limits.memory_mb", "at most 256 on this server"),
        ({"cpus": 0}, "limits.cpus", "must be a positive number"),
        ({"pids": 1.5}, "limits.pids", "must be a positive integer"),
        ({"memory_mb": True}, "limits.memory_mb", "must be a positive integer"),
        ({"timeout_s": float("inf")}, "limits.timeout_s", "must be a positive number"),
        ({"disk_gb": 1}, "limits.disk_gb", "unknown limit"),
    ],
)
def test_limits_that_are_refused(limits: dict[str, object], path: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        SandboxLimits.from_tool(limits, maxima=MAXIMA)
    assert caught.value.details["errors"][0] == {"path": path, "message": message}


def test_limits_are_lowered_when_the_maxima_shrink() -> None:
    generous = SandboxLimits(memory_mb=1024, timeout_s=100)
    assert generous.within(MAXIMA).memory_mb == 256
    assert generous.within(MAXIMA).timeout_s == 30


def test_operator_maxima_from_the_environment() -> None:
    settings = SandboxSettings.from_env(
        {"PASAR_SANDBOX_MAX_MEMORY_MB": "512", "PASAR_SANDBOX_MAX_CONTAINERS": "8",
         "PASAR_SANDBOX_WORKER_NAME": "w1", "DOCKER_HOST": "unix:///run/x.sock"}
    )  # fmt: skip
    assert settings.maxima.memory_mb == 512
    assert settings.maxima.pids == DEFAULT_MAXIMA.pids
    assert (settings.max_containers, settings.worker_name) == (8, "w1")
    assert settings.docker_host == "unix:///run/x.sock"
    assert Settings.from_env({"PASAR_SANDBOX_MAX_PIDS": "99"}).sandbox.maxima.pids == 99
    with pytest.raises(StartupError, match="PASAR_SANDBOX_MAX_PIDS must be an integer"):
        SandboxSettings.from_env({"PASAR_SANDBOX_MAX_PIDS": "many"})
    with pytest.raises(StartupError, match="must be positive"):
        SandboxSettings.from_env({"PASAR_SANDBOX_MAX_CPUS": "-1"})


@pytest.mark.parametrize("where", ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:{port}"])
def test_no_daemon_is_sandbox_unavailable_with_how_to_start_one(where: str) -> None:
    settings = SandboxSettings(docker_host=where.format(port=free_port()))
    with pytest.raises(SandboxUnavailable) as caught:
        SandboxClient(settings).start()
    assert caught.value.code == "SANDBOX_UNAVAILABLE"
    assert caught.value.status == 503
    assert "apt-get install -y docker.io" in caught.value.message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(limits=st.dictionaries(st.sampled_from(["memory_mb", "cpus", "pids", "tmpfs_mb", "timeout_s",
                                               "result_bytes", "swap"]), json_values, max_size=4))  # fmt: skip
def test_any_limits_object_is_accepted_within_the_maxima_or_refused(
    limits: dict[str, object],
) -> None:
    try:
        parsed = SandboxLimits.from_tool(limits, maxima=MAXIMA)
    except ValidationFailed as error:
        assert error.details["errors"]
        return
    assert parsed.within(MAXIMA) == parsed
