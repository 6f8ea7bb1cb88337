"""An operator installs a plugin into the deployment: the README's serve command keeps it."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import httpx

from tests.e2e.test_serve import data_dir as data_dir
from tests.e2e.test_serve import stop, wait_until_ready
from tests.support.installed import ROOT, installed, is_installed
from tests.support.processes import Processes
from tests.support.servers import free_port

DISTRIBUTION = "pasar-serve-probe"


def write_plugin(root: Path) -> Path:
    """A tiny third-party plugin: one family with one tool, its own pyproject."""
    package = root / "src" / "pasar_serve_probe"
    package.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
            [project]
            name = "{DISTRIBUTION}"
            version = "0.1.0"
            dependencies = ["pasar-core"]

            [project.entry-points.pasar]
            serve_probe = "pasar_serve_probe"

            [build-system]
            requires = ["hatchling>=1.26"]
            build-backend = "hatchling.build"

            [tool.hatch.build.targets.wheel]
            packages = ["src/pasar_serve_probe"]
        """)
    )
    (package / "__init__.py").write_text(
        textwrap.dedent("""\
            from pasar_core import Effect, ToolFamily, ToolSpec, hookimpl


            async def echo(ctx, args):
                return {"text": args["text"]}


            ECHO = ToolSpec(
                id="serve_probe:echo",
                title="Echo",
                description="Returns its text.",
                input_schema={"type": "object", "properties": {"text": {"type": "string"}},
                              "required": ["text"]},
                output_schema={"type": "object"},
                effect=Effect.READ,
                run=echo,
            )


            @hookimpl
            def register_tool_families():
                return [ToolFamily(id="serve_probe", title="Probe", description="A probe.",
                                   tools=(ECHO,))]
        """)
    )
    return root


def serve_script(processes: Processes, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """The README's serve command, as an operator runs it (it syncs the environment first)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PASAR_DEV")}
    env |= {"PASAR_DATA_DIR": str(data_dir)}
    return processes.start(
        [str(ROOT / "scripts" / "serve"), "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def served_tools(base: str) -> set[str]:
    return {tool["id"] for tool in httpx.get(f"{base}/tools").json()["tools"]}


def test_an_installed_plugin_is_served_and_stays_across_restarts(
    tmp_path: Path, data_dir: Path, processes_started: Processes
) -> None:
    plugin = write_plugin(tmp_path / "pasar-serve-probe")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with installed(plugin, DISTRIBUTION):
        for start in ("first", "restart"):
            process = serve_script(processes_started, data_dir, port)
            try:
                wait_until_ready(base, process, timeout_s=120)
                tools = served_tools(base)
            finally:
                stderr = stop(process)
            assert "serve_probe:echo" in tools, (start, stderr)
            assert "txt:read" in tools
            assert process.returncode == 0, stderr
            assert is_installed(DISTRIBUTION), f"the serve script removed the plugin ({start})"
    assert not is_installed(DISTRIBUTION)
