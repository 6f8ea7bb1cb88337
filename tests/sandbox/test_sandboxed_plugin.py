"""A third-party plugin built from source in the test, installed with `pasar plugins install
--sandboxed`, listed in the catalogue and called in an agent run through the sandbox queue, a
real rq sandbox worker and a container of the plugin's own image; never imported here."""

from __future__ import annotations

import base64
import hashlib
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pasar_core.sandbox.policy import LABEL_WORKER
from pasar_core.settings import Settings
from pasar_core.testing import DockerForTests
from starlette.testclient import TestClient

from pasar.cli import main
from tests.e2e.runs import call, error, result, run_tools
from tests.sandbox.conftest import ContainerAudit

PLUGIN_SOURCE = """
from __future__ import annotations

import os

from pasar_core import Effect, ToolFamily, ToolSpec, hookimpl


async def forecast(ctx, args):
    return {"city": args["city"], "forecast": "sunny", "uid": os.getuid(),
            "host_module": "tests" in __import__("sys").modules}


async def refuse(ctx, args):
    raise ValueError("the almanac is closed")


@hookimpl
def register_tool_families():
    return [ToolFamily(
        id="almanac", title="Almanac", description="Weather from an untrusted package.",
        version="1.0",
        tools=(
            ToolSpec(id="almanac:forecast", title="Forecast", description="Tomorrow's weather.",
                     input_schema={"type": "object", "properties": {"city": {"type": "string"}},
                                   "required": ["city"]},
                     output_schema={"type": "object", "required": ["city", "forecast"]},
                     run=forecast, effect=Effect.READ, timeout_s=10),
            ToolSpec(id="almanac:closed", title="Closed", description="Always fails.",
                     input_schema={"type": "object"}, output_schema={"type": "object"},
                     run=refuse, effect=Effect.READ, timeout_s=10),
        ),
    )]
"""


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(
    directory: Path, distribution: str, files: dict[str, str], entry: str | None
) -> Path:
    """A pure-Python wheel from `files` (path -> source), with a `pasar` entry point."""
    version = "1.0.0"
    dist_info = f"{distribution}-{version}.dist-info"
    contents = {path: text.encode() for path, text in files.items()}
    contents[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    ).encode()
    contents[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: pasar-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    if entry is not None:
        contents[f"{dist_info}/entry_points.txt"] = f"[pasar]\n{entry}\n".encode()
    record = [_record_line(name, data) for name, data in contents.items()]
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / f"{distribution}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in contents.items():
            wheel.writestr(name, data)
    return path


def cli_env(settings: Settings, docker: DockerForTests, worker_name: str) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database_url or "",
        "PASAR_DATA_DIR": str(settings.data_dir),
        "PASAR_SECRET_KEY": settings.secret_key or "",
        "PASAR_ALLOW_PRIVATE_HOSTS": ",".join(settings.allow_private_hosts),
        "PASAR_SANDBOX_DOCKER_HOST": docker.docker_host,
        "PASAR_SANDBOX_WORKER_NAME": worker_name,
        "PIP_NO_INDEX": "1",  # the wheel has no dependencies: nothing is fetched
    }


@pytest.fixture
def cli_worker(pasar_docker: DockerForTests) -> Any:
    """The CLI's own containers (the manifest read) carry this name; none may remain."""
    name = f"{pasar_docker.worker_name}-cli"
    yield name
    client = pasar_docker.client()
    try:
        left = client.api.containers(all=True, filters={"label": f"{LABEL_WORKER}={name}"})
    finally:
        client.close()
    assert not left, f"containers left behind by the install: {left}"


def test_third_party_plugin_installs_sandboxed_and_runs(
    tools_client: TestClient,
    tools_user: Any,
    tools_settings: Settings,
    pasar_docker: DockerForTests,
    cli_worker: str,
    container_audit: ContainerAudit,
    tmp_path: Path,
) -> None:
    wheel = build_wheel(
        tmp_path, "almanac_plugin", {"almanac_plugin/__init__.py": PLUGIN_SOURCE},
        "almanac = almanac_plugin",
    )  # fmt: skip
    env = cli_env(tools_settings, pasar_docker, cli_worker)
    installed = CliRunner().invoke(main, ["plugins", "install", "--sandboxed", str(wheel)], env=env)
    assert installed.exit_code == 0, installed.output
    assert "almanac:closed, almanac:forecast" in installed.output
    assert "almanac_plugin" not in sys.modules  # the package never ran here
    # The CLI's manifest read ran in a container of its own, which the session audit inspected.
    container_audit.log.wait_until(
        lambda: any(
            (i["Config"]["Labels"] or {}).get(LABEL_WORKER) == cli_worker
            for i in list(container_audit.inspected.values())
        )
    )

    listed = {tool["id"]: tool for tool in tools_client.get("/tools").json()["tools"]}
    assert listed["almanac:forecast"]["source"] == "sandboxed"
    assert listed["almanac:forecast"]["family"] == "almanac"

    forecast, closed = run_tools(
        tools_client, tools_user(), ["almanac:forecast", "almanac:closed"],
        call("almanac:forecast", city="Porto"), call("almanac:closed"),
    )  # fmt: skip
    value = result(forecast)
    assert value["city"] == "Porto"
    assert value["forecast"] == "sunny"
    assert value["uid"] != 0  # a non-root user in the container
    assert value["host_module"] is False
    assert "the almanac is closed" in error(closed)

    # Installing it again makes a new revision; removing it is refused while an agent uses it.
    again = CliRunner().invoke(main, ["plugins", "install", "--sandboxed", str(wheel)], env=env)
    assert again.exit_code == 0, again.output
    assert "revision 2" in again.output
    in_use = CliRunner().invoke(main, ["plugins", "remove", "--sandboxed", "almanac"], env=env)
    assert in_use.exit_code == 1, in_use.output
    assert "agents still use" in in_use.output
    assert "almanac:forecast" in {tool["id"] for tool in tools_client.get("/tools").json()["tools"]}


def test_an_unused_sandboxed_plugin_is_removed(
    tools_client: TestClient,
    tools_settings: Settings,
    pasar_docker: DockerForTests,
    cli_worker: str,
    tmp_path: Path,
) -> None:
    wheel = build_wheel(
        tmp_path,
        "almanac_plugin",
        {"almanac_plugin/__init__.py": PLUGIN_SOURCE},
        "almanac = almanac_plugin",
    )
    env = cli_env(tools_settings, pasar_docker, cli_worker)
    runner = CliRunner()
    assert (
        runner.invoke(main, ["plugins", "install", "--sandboxed", str(wheel)], env=env).exit_code
        == 0
    )
    assert "almanac:forecast" in {tool["id"] for tool in tools_client.get("/tools").json()["tools"]}
    removed = runner.invoke(main, ["plugins", "remove", "--sandboxed", "almanac"], env=env)
    assert removed.exit_code == 0, removed.output
    ids = {tool["id"] for tool in tools_client.get("/tools").json()["tools"]}
    assert not {tool_id for tool_id in ids if tool_id.startswith("almanac:")}


def test_packages_that_are_not_pasar_plugins_are_refused(
    tools_settings: Settings, pasar_docker: DockerForTests, cli_worker: str, tmp_path: Path
) -> None:
    env = cli_env(tools_settings, pasar_docker, cli_worker)
    runner = CliRunner()
    plain = build_wheel(tmp_path, "plain_lib", {"plain_lib/__init__.py": "X = 1\n"}, None)
    refused = runner.invoke(main, ["plugins", "install", "--sandboxed", str(plain)], env=env)
    assert refused.exit_code == 1, refused.output
    assert "entry point" in refused.output.lower() or "not a pasar plugin" in refused.output
    not_a_wheel = tmp_path / "junk-1.0-py3-none-any.whl"
    not_a_wheel.write_bytes(b"this is not a zip file")
    junk = runner.invoke(main, ["plugins", "install", "--sandboxed", str(not_a_wheel)], env=env)
    assert junk.exit_code == 1, junk.output
    unsandboxed = runner.invoke(main, ["plugins", "install", str(plain)], env=env)
    assert unsandboxed.exit_code == 2, unsandboxed.output
    assert "--sandboxed" in unsandboxed.output


def test_admins_install_through_the_api_and_the_sandbox_queue(
    tools_client: TestClient,
    tools_user: Any,
    tools_settings: Settings,
    pasar_docker: DockerForTests,
    cli_worker: str,
    tmp_path: Path,
) -> None:
    """The API process hands the wheel to a sandbox worker (it never talks to Docker), then
    checks and stores the manifest the worker read in a container."""
    from pasar_core.testing import TEST_PASSWORD

    env = cli_env(tools_settings, pasar_docker, cli_worker)
    created = CliRunner().invoke(
        main, ["users", "create", "root@example.com", "--operator",
               "--password", TEST_PASSWORD], env=env,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    token = tools_client.post(
        "/auth/token", json={"email": "root@example.com", "password": TEST_PASSWORD}
    ).json()["access_token"]
    admin = {"Authorization": f"Bearer {token}"}
    member = tools_user()
    wheel = build_wheel(
        tmp_path, "almanac_plugin", {"almanac_plugin/__init__.py": PLUGIN_SOURCE},
        "almanac = almanac_plugin",
    )  # fmt: skip
    upload = {"wheel": {"filename": wheel.name,
                        "content_base64": base64.b64encode(wheel.read_bytes()).decode()}}  # fmt: skip

    forbidden = tools_client.post("/plugins/sandboxed", json=upload, headers=member)
    assert forbidden.status_code == 403, forbidden.text
    assert forbidden.json()["error"]["code"] == "FORBIDDEN"
    assert tools_client.get("/plugins/sandboxed", headers=member).status_code == 403

    metadata = {**upload, "allow_hosts": ["169.254.169.254"]}
    outside = tools_client.post("/plugins/sandboxed", json=metadata, headers=admin)
    assert outside.status_code == 422, outside.text
    assert outside.json()["error"]["code"] == "VALIDATION_FAILED"

    installed = tools_client.post("/plugins/sandboxed", json=upload, headers=admin)
    assert installed.status_code == 201, installed.text
    assert installed.json()["allow_hosts"] == []
    assert installed.json()["tools"] == ["almanac:closed", "almanac:forecast"]
    listed = tools_client.get("/plugins/sandboxed", headers=admin).json()["plugins"]
    assert [plugin["name"] for plugin in listed] == ["almanac"]
    audited = tools_client.get("/audit", params={"action": "plugin.installed"}, headers=admin)
    [row] = audited.json()["rows"]
    assert (row["target_id"], row["details"]["version"]) == ("almanac", "1.0.0"), row
    [forecast] = run_tools(tools_client, member, ["almanac:forecast"],
                           call("almanac:forecast", city="Lisbon"))  # fmt: skip
    assert result(forecast)["city"] == "Lisbon"

    bad = {"wheel": {"filename": "plain_lib-1.0.0-py3-none-any.whl",
                     "content_base64": base64.b64encode(
                         build_wheel(tmp_path, "plain_lib", {"plain_lib/__init__.py": "X = 1\n"},
                                     None).read_bytes()).decode()}}  # fmt: skip
    refused = tools_client.post("/plugins/sandboxed", json=bad, headers=admin)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "PLUGIN_PACKAGE_INVALID"
    for body in ({}, {"wheel": upload["wheel"], "requirement": "x"},
                 {"wheel": {"filename": "../../etc/passwd.whl", "content_base64": "AAAA"}},
                 {"wheel": {"filename": "a-1-py3-none-any.whl", "content_base64": "!!"}}):  # fmt: skip
        response = tools_client.post("/plugins/sandboxed", json=body, headers=admin)
        assert response.status_code == 422, (body, response.text)


COURIER_SOURCE = """
from __future__ import annotations

import json
import urllib.error
import urllib.request

from pasar_core import Effect, ToolFamily, ToolSpec, hookimpl


async def fetch(ctx, args):
    try:
        with urllib.request.urlopen(args["url"], timeout=10) as response:
            return {"status": response.status, "body": json.loads(response.read())}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "body": error.read().decode()}


@hookimpl
def register_tool_families():
    return [ToolFamily(
        id="courier", title="Courier", description="Fetches a URL.", version="1.0",
        tools=(ToolSpec(id="courier:fetch", title="Fetch", description="GET a URL.",
                        input_schema={"type": "object", "properties": {"url": {"type": "string"}},
                                      "required": ["url"]},
                        output_schema={"type": "object", "required": ["status"]},
                        run=fetch, effect=Effect.READ, timeout_s=20),),
    )]
"""


def test_a_sandboxed_plugin_reaches_the_hosts_approved_at_install(
    tools_client: TestClient,
    tools_user: Any,
    tools_settings: Settings,
    pasar_docker: DockerForTests,
    cli_worker: str,
    tmp_path: Path,
) -> None:
    """`--allow-host` (the operator's approval at install) is the plugin's egress allow list;
    hosts outside it, and hosts the guard refuses, stay unreachable."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.support.servers import serve_in_thread

    seen: list[str] = []

    async def echo(request: Request) -> JSONResponse:
        seen.append(request.url.path)
        return JSONResponse({"path": request.url.path})

    wheel = build_wheel(
        tmp_path, "courier_plugin", {"courier_plugin/__init__.py": COURIER_SOURCE},
        "courier = courier_plugin",
    )  # fmt: skip
    env = cli_env(tools_settings, pasar_docker, cli_worker)
    install = ["plugins", "install", "--sandboxed", str(wheel)]
    refused = CliRunner().invoke(main, [*install, "--allow-host", "169.254.169.254"], env=env)
    assert refused.exit_code == 1, refused.output
    assert "allow_hosts: 169.254.169.254: " in refused.output
    with serve_in_thread(Starlette(routes=[Route("/{path:path}", echo)])) as base:
        allowed = base.removeprefix("http://")
        installed = CliRunner().invoke(main, [*install, "--allow-host", allowed], env=env)
        assert installed.exit_code == 0, installed.output
        assert f"hosts: {allowed}" in installed.output
        reached, elsewhere = run_tools(
            tools_client, tools_user(), ["courier:fetch"],
            call("courier:fetch", url=f"{base}/approved"),
            call("courier:fetch", url="http://127.0.0.1:9/"),
        )  # fmt: skip
    assert result(reached) == {"status": 200, "body": {"path": "/approved"}}
    assert result(elsewhere)["status"] == 403
    assert seen == ["/approved"]
    removed = CliRunner().invoke(main, ["plugins", "remove", "--sandboxed", "courier"], env=env)
    assert removed.exit_code == 1  # the test's agent still lists it


LIFECYCLE_SOURCE = """
from pasar_core import Effect, ToolFamily, ToolSpec, hookimpl

GREETING = "almanac.greeting"


@hookimpl
async def startup(services):
    services.extras[GREETING] = {"text": "opened by startup", "calls": 0}


@hookimpl
def shutdown(services):
    greeting = services.extras.pop(GREETING)
    raise RuntimeError(f"shutdown ran after {greeting['calls']} calls")


async def greet(ctx, args):
    greeting = ctx.extras[GREETING]
    greeting["calls"] += 1
    return {"text": greeting["text"], "calls": greeting["calls"]}


@hookimpl
def register_tool_families():
    return [ToolFamily(
        id="almanac", title="Almanac", description="A shared client made at start-up.",
        version="1.0",
        tools=(ToolSpec(id="almanac:greet", title="Greet", description="Uses the client.",
                        input_schema={"type": "object"}, output_schema={"type": "object"},
                        run=greet, effect=Effect.READ, timeout_s=10),),
    )]
"""

TRESPASSER_SOURCE = LIFECYCLE_SOURCE.replace('GREETING = "almanac.greeting"',
                                             'GREETING = "web.resolver"')  # fmt: skip


def test_a_sandboxed_plugins_startup_and_shutdown_run_in_its_container(
    tools_client: TestClient,
    tools_user: Any,
    tools_settings: Settings,
    pasar_docker: DockerForTests,
    sandbox_workers: Any,
    cli_worker: str,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    env = cli_env(tools_settings, pasar_docker, cli_worker)
    refused_wheel = build_wheel(tmp_path, "trespasser_plugin",
                                {"trespasser_plugin/__init__.py": TRESPASSER_SOURCE},
                                "almanac = trespasser_plugin")  # fmt: skip
    refused = CliRunner().invoke(main, ["plugins", "install", "--sandboxed", str(refused_wheel)],
                                 env=env)  # fmt: skip
    assert refused.exit_code == 1, refused.output
    assert "failed to start" in refused.output
    assert "'web.resolver' outside its namespaces" in refused.output

    wheel = build_wheel(tmp_path, "lifecycle_plugin",
                        {"lifecycle_plugin/__init__.py": LIFECYCLE_SOURCE},
                        "almanac = lifecycle_plugin")  # fmt: skip
    installed = CliRunner().invoke(main, ["plugins", "install", "--sandboxed", str(wheel)], env=env)
    assert installed.exit_code == 0, installed.output

    first, second = run_tools(tools_client, tools_user(), ["almanac:greet"],
                              call("almanac:greet"), call("almanac:greet"))  # fmt: skip
    # One warm container: the extras its startup made live on between calls.
    assert result(first) == {"text": "opened by startup", "calls": 1}
    assert result(second) == {"text": "opened by startup", "calls": 2}

    with caplog.at_level("ERROR", logger="pasar.sandbox"):
        sandbox_workers.stop()  # removes the containers: each runs its shutdown hooks first
    shut_down = [r.getMessage() for r in caplog.records if "failed to shut down" in r.getMessage()]
    assert any("shutdown ran after 2 calls" in message for message in shut_down), shut_down
