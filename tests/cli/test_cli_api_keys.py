"""`pasar api-keys list|create|revoke`: the operator's view of every user's API keys."""

from __future__ import annotations

import json

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


def test_create_list_and_revoke_keys(client: TestClient, pasar_settings: Settings) -> None:
    env, runner = cli_env(pasar_settings), CliRunner()
    for email in ("ops@example.com", "dev@example.com"):
        credentials = {"email": email, "password": TEST_PASSWORD}
        assert client.post("/auth/signup", json=credentials).status_code == 201

    created = runner.invoke(
        main, ["api-keys", "create", "OPS@example.com", "--name", "ci", "--expires-in", "3600"],
        env=env,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()  # alone on stdout, so `KEY=$(pasar api-keys create ...)` works
    assert key.startswith("psr_")
    assert "shown only now" in created.stderr
    assert client.get("/agents", headers={"X-API-Key": key}).status_code == 200
    other = runner.invoke(main, ["api-keys", "create", "dev@example.com"], env=env)
    assert other.exit_code == 0, other.output

    listed = runner.invoke(main, ["api-keys", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert key not in listed.output
    rows = json.loads(listed.stdout)
    assert [(row["owner"], row["name"], row["status"]) for row in rows] == [
        ("dev@example.com", "default", "active"),
        ("ops@example.com", "ci", "active"),
    ]
    assert rows[1]["expires_at"] is not None
    assert rows[1]["last_used_at"] is not None
    only_ops = runner.invoke(main, ["api-keys", "list", "--user", "ops@example.com"], env=env)
    assert only_ops.exit_code == 0, only_ops.output
    assert rows[1]["prefix"] in only_ops.output
    assert rows[0]["prefix"] not in only_ops.output
    assert key not in only_ops.output

    revoked = runner.invoke(main, ["api-keys", "revoke", rows[1]["prefix"]], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked {rows[1]['prefix']}" in revoked.output
    assert "ops@example.com" in revoked.output
    assert client.get("/agents", headers={"X-API-Key": key}).status_code == 401
    by_id = runner.invoke(main, ["api-keys", "revoke", rows[0]["id"]], env=env)
    assert by_id.exit_code == 0, by_id.output
    statuses = [row["status"] for row in json.loads(
        runner.invoke(main, ["api-keys", "list", "--json"], env=env).stdout
    )]  # fmt: skip
    assert statuses == ["revoked", "revoked"]


def test_mistakes_are_one_clean_line(client: TestClient, pasar_settings: Settings) -> None:
    env, runner = cli_env(pasar_settings), CliRunner()
    credentials = {"email": "ops@example.com", "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    for args, fragment in (
        (["api-keys", "create", "nobody@example.com"], "no user with email"),
        (["api-keys", "create", "ops@example.com", "--expires-in", "5"], "expires_in_s"),
        (["api-keys", "revoke", "psr_00000000"], "no API key with prefix"),
        (["api-keys", "revoke", "not-an-id"], "no API key with id"),
        (["api-keys", "list", "--user", "nobody@example.com"], "no user with email"),
    ):
        result = runner.invoke(main, args, env=env)
        assert result.exit_code == 1, (args, result.output)
        assert fragment in result.output, (args, result.output)
        assert "Traceback" not in result.output
    empty = runner.invoke(main, ["api-keys", "list"], env=env)
    assert empty.exit_code == 0
    assert "no API keys" in empty.output
