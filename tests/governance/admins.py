"""The server's operator for governance tests: a user made the operator through the CLI
(`pasar users set-operator`, which audits it)."""

from __future__ import annotations

import uuid

from click.testing import CliRunner
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.cli import main


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database_url or "",
        "PASAR_DATA_DIR": str(settings.data_dir),
        "PASAR_SECRET_KEY": settings.secret_key or "",
    }


def make_operator(client: TestClient, settings: Settings) -> dict[str, str]:
    """Authorization headers of a new user made the server's operator."""
    email = f"operator-{uuid.uuid4().hex[:8]}@example.com"
    credentials = {"email": email, "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    changed = CliRunner().invoke(main, ["users", "set-operator", email], env=cli_env(settings))
    assert changed.exit_code == 0, changed.output
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}
