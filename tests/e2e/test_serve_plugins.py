"""A publisher's plugin in a deployment: made with `pasar plugin new`, built into a wheel,
installed as the README tells an operator, called in an agent run, and still served after a
restart with the README's serve command (which syncs the environment first)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner
from pasar_core.testing import TEST_PASSWORD

from pasar.cli import main
from tests.e2e.runs import call, scripted
from tests.e2e.test_serve import data_dir as data_dir
from tests.e2e.test_serve import stop, wait_until_ready
from tests.support.installed import ROOT, installed, is_installed, uv
from tests.support.processes import Processes
from tests.support.servers import free_port

DISTRIBUTION = "pasar-serve-probe"
TOOL = "serve_probe:greet"


def build_kit_wheel(tmp_path: Path) -> Path:
    root = tmp_path / DISTRIBUTION
    made = CliRunner().invoke(main, ["plugin", "new", "serve-probe", "--dir", str(root)])
    assert made.exit_code == 0, made.output
    subprocess.run(
        [*uv(), "build", "--offline", "--wheel", "--out-dir", str(tmp_path / "dist"), str(root)],
        capture_output=True, check=True, timeout=300,
    )  # fmt: skip
    [wheel] = (tmp_path / "dist").glob("*.whl")
    return wheel


def serve_script(processes: Processes, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """The README's serve command, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PASAR_DEV")}
    env |= {"PASAR_DATA_DIR": str(data_dir)}
    return processes.start(
        [str(ROOT / "scripts" / "serve"), "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def greet_in_a_run(http: httpx.Client, first: bool) -> list[Any]:
    """Sign up (first start) or log in, then run an agent whose model calls the plugin's tool."""
    credentials = {"email": "publisher@example.com", "password": TEST_PASSWORD}
    if first:
        assert http.post("/auth/signup", json=credentials).status_code == 201
    token = http.post("/auth/token", json=credentials).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    config = scripted(call(TOOL, name="Ada"))
    created = http.post(
        "/agents", json={"name": "kit", "tools": [TOOL], "config": config}, headers=headers
    )
    assert created.status_code == 201, created.text
    run = http.post(
        f"/agents/{created.json()['agent_id']}/execute",
        json={"input": "greet Ada", "parameters": {"wait": True, "timeout_s": 60}},
        headers=headers,
    ).json()
    assert run["status"] == "succeeded", run
    return [step.get("result", step) for step in run["steps"] if step["type"] == "tool_result"]


def test_a_kit_plugin_installed_runs_in_agents_and_stays_across_restarts(
    tmp_path: Path, data_dir: Path, processes_started: Processes
) -> None:
    wheel = build_kit_wheel(tmp_path)
    port = free_port()
    with installed(wheel, DISTRIBUTION):
        for start in ("first", "restart"):
            process = serve_script(processes_started, data_dir, port)
            try:
                wait_until_ready(f"http://127.0.0.1:{port}", process, timeout_s=120)
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                    tools = {tool["id"] for tool in http.get("/tools").json()["tools"]}
                    assert {TOOL, "txt:read"} <= tools, start
                    results = greet_in_a_run(http, first=start == "first")
            finally:
                stderr = stop(process)
            assert results == [{"greeting": "Hello, Ada!"}], (start, stderr)
            assert process.returncode == 0, stderr
            assert is_installed(DISTRIBUTION), f"the serve script removed the plugin ({start})"
    assert not is_installed(DISTRIBUTION)
