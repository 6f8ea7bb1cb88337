"""A sandboxed plugin's tool that needs Google gets, per call, an access token narrowed to that
tool's scopes (refreshed at the emulator asking for a subset); never the grant's own token,
never a refresh token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pasar_core.sandbox.settings import SandboxSettings
from pasar_core.settings import Settings
from pasar_core.storage.models import AuthToken
from pasar_core.testing import TEST_PASSWORD, DockerForTests
from pasar_google_workspace import provider as google
from pasar_google_workspace.testing import RunningEmulator
from sqlalchemy import select
from starlette.testclient import TestClient

from pasar.app import create_app
from pasar.cli import main
from pasar.sandbox_worker import SandboxWorkerPool
from tests.e2e.consent import Browser
from tests.e2e.runs import call, execute
from tests.sandbox.test_sandboxed_plugin import build_wheel, cli_env

VAULT_SOURCE = f'''
from pasar_core import Effect, ToolFamily, ToolSpec, hookimpl


async def whoami(ctx, args):
    oauth = ctx.oauth
    return {{"token": oauth.access_token, "scopes": sorted(oauth.scopes),
            "fields": sorted(name for name in dir(oauth) if not name.startswith("_"))}}


@hookimpl
def register_tool_families():
    return [ToolFamily(id="vault", title="Vault", description="Reads who the token is.",
        tools=(ToolSpec(id="vault:whoami", title="Who am I", description="The token it got.",
                        input_schema={{"type": "object"}}, output_schema={{"type": "object"}},
                        run=whoami, effect=Effect.READ, auth_provider="google",
                        scopes=frozenset({{"{google.GMAIL_READONLY}"}}), timeout_s=10),),
    )]
'''


@pytest.fixture
def oauth_client(
    google_settings: Settings,
    sandbox_settings: SandboxSettings,
    sandbox_redis_url: str,
    sandbox_workers: SandboxWorkerPool,
) -> Iterator[TestClient]:
    settings = google_settings.with_overrides(
        sandbox=sandbox_settings, sandbox_redis_url=sandbox_redis_url
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def stored_grant(client: TestClient) -> AuthToken:
    services = client.app_state["services"]

    async def read() -> AuthToken:
        async with services.sessionmaker() as session:
            return (await session.scalars(select(AuthToken))).one()

    assert client.portal is not None
    found: AuthToken = client.portal.call(read)
    return found


def test_sandboxed_tool_gets_a_narrowed_access_token_per_call(
    oauth_client: TestClient,
    google_settings: Settings,
    google_emulator: RunningEmulator,
    pasar_docker: DockerForTests,
    tmp_path: Path,
) -> None:
    client = oauth_client
    wheel = build_wheel(tmp_path, "vault_plugin", {"vault_plugin/__init__.py": VAULT_SOURCE},
                        "vault = vault_plugin")  # fmt: skip
    env = cli_env(google_settings, pasar_docker, f"{pasar_docker.worker_name}-cli")
    installed = CliRunner().invoke(main, ["plugins", "install", "--sandboxed", str(wheel)], env=env)
    assert installed.exit_code == 0, installed.output

    credentials = {"email": "vault@example.com", "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    headers = {"Authorization": "Bearer "
               + client.post("/auth/token", json=credentials).json()["access_token"]}  # fmt: skip
    # The agent also reads sheets, so the grant is broader than the sandboxed tool's scope.
    body = client.post("/agents", json={
        "name": "v", "tools": ["vault:whoami", "sheets:read"],
        "config": {"model": "scripted", "model_options": {"script": [
            call("vault:whoami"), call("vault:whoami"), {"content": "done"}]}},
    }, headers=headers).json()  # fmt: skip
    assert body["auth_required"] is True, body
    assert Browser(client).connect(body["auth_url"]).status_code == 200

    grant = stored_grant(client)
    assert set(grant.scopes) >= {google.GMAIL_READONLY, google.SPREADSHEETS_READONLY}
    run = execute(client, headers, body["agent_id"])
    results = [step for step in run["steps"] if step["type"] == "tool_result"]
    assert len(results) == 2, results
    first, second = (step["result"] for step in results)

    state = google_emulator.state
    narrowed = state.access_tokens[first["token"]]
    assert narrowed.scopes == frozenset({google.GMAIL_READONLY})
    assert first["scopes"] == [google.GMAIL_READONLY]
    # Not a token of the grant's scopes, and nothing but the access token reached the tool.
    broad = [value for value, token in state.access_tokens.items()
             if google.SPREADSHEETS_READONLY in token.scopes]  # fmt: skip
    assert first["token"] not in broad
    assert not any("refresh" in field for field in first["fields"]), first["fields"]
    assert first["token"] not in state.refresh_tokens
    # The narrowed token is reused while it is valid (one narrowing refresh for both calls).
    assert second["token"] == first["token"]
    assert state.hits["token:refresh_token"] == 1
