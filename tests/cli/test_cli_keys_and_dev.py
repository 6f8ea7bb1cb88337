"""`pasar keys rotate` re-encrypts stored secrets; `pasar dev google-emulator` serves Google."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import httpx
from click.testing import CliRunner
from pasar_core.agents.secrets import load_secrets
from pasar_core.services import Services
from pasar_core.settings import Settings
from pasar_core.storage.models import AgentSecret
from sqlalchemy import select
from starlette.testclient import TestClient

from pasar.cli import main
from tests.support.processes import Processes
from tests.support.servers import free_port


def test_keys_rotate_reencrypts_agent_secrets(
    client: TestClient, make_user, pasar_settings: Settings
) -> None:
    headers = make_user()
    agent_id = client.post(
        "/agents", json={"name": "db", "tools": ["postgres:query"]}, headers=headers
    ).json()["agent_id"]
    dsn = "postgresql://reader:s3cret@127.0.0.1:5432/shop"
    assert (
        client.put(
            f"/agents/{agent_id}/secrets/postgres_dsn", json={"value": dsn}, headers=headers
        ).status_code
        == 204
    )
    key_file = pasar_settings.data_dir / "encryption_keys.json"
    before = json.loads(key_file.read_text())["active"]

    env = {
        "DATABASE_URL": pasar_settings.database_url or "",
        "PASAR_DATA_DIR": str(pasar_settings.data_dir),
        "PASAR_SECRET_KEY": pasar_settings.secret_key or "",
    }
    result = CliRunner().invoke(main, ["keys", "rotate", "--new-key"], env=env)
    assert result.exit_code == 0, result.output
    after = json.loads(key_file.read_text())["active"]
    assert after != before
    assert key_file.stat().st_mode & 0o777 == 0o600

    services: Services = client.app_state["services"]
    keyring = pasar_settings.keyring()

    async def check() -> tuple[list[str], dict[str, str]]:
        async with services.sessionmaker() as session:
            key_ids = list(await session.scalars(select(AgentSecret.key_id)))
            return key_ids, await load_secrets(
                session, keyring, uuid.UUID(agent_id), ["postgres_dsn"]
            )

    assert client.portal is not None
    key_ids, secrets = client.portal.call(check)
    assert key_ids == [after]
    assert secrets == {"postgres_dsn": dsn}


def test_keys_rotate_refuses_new_key_with_env_keys(pasar_settings: Settings) -> None:
    env = {
        "PASAR_DATA_DIR": str(pasar_settings.data_dir),
        "PASAR_ENCRYPTION_KEYS": "k1:" + "A" * 43,
    }
    result = CliRunner().invoke(main, ["keys", "rotate", "--new-key"], env=env)
    assert result.exit_code == 1
    assert "PASAR_ENCRYPTION_KEYS" in result.output


def test_dev_google_emulator_serves_google_shaped_errors(processes_started: Processes) -> None:
    port = free_port()
    process = processes_started.start(
        [sys.executable, "-m", "pasar", "dev", "google-emulator", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/gmail/v1/users/me/messages", timeout=1)
            break
        except httpx.TransportError:
            assert process.poll() is None, "the emulator exited"
            assert time.monotonic() < deadline, "the emulator did not start"
            time.sleep(0.1)
    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"
