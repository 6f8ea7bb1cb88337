"""`pasar schedules list`: the operator's view of every schedule, as a table or JSON."""

from __future__ import annotations

import json
import uuid

from click.testing import CliRunner
from pasar_core.settings import Settings
from starlette.testclient import TestClient

from pasar.cli import main
from tests.schedules.support import make_agent, make_schedule
from tests.schedules.test_schedules_api import sign_up


def test_schedules_list_shows_every_schedule(client: TestClient, pasar_settings: Settings) -> None:
    env = {"DATABASE_URL": pasar_settings.database_url or "",
           "PASAR_DATA_DIR": str(pasar_settings.data_dir),
           "PASAR_SECRET_KEY": pasar_settings.secret_key or ""}  # fmt: skip
    headers = sign_up(client)
    agent_id = make_agent(client, headers)
    daily = make_schedule(client, headers, agent_id, "0 6 * * *", timezone="Africa/Lagos")
    hourly = make_schedule(client, headers, make_agent(client, headers), "@hourly")
    base = f"/agents/{agent_id}/schedules/{daily['id']}"
    assert client.post(f"{base}/pause", headers=headers).status_code == 200
    runner = CliRunner()

    listed = runner.invoke(main, ["schedules", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = {row["id"]: row for row in json.loads(listed.output)}
    assert {daily["id"], hourly["id"]} <= set(rows)
    assert rows[daily["id"]]["paused"] is True
    assert rows[daily["id"]]["next_run_at"] is None
    assert (rows[hourly["id"]]["cron"], rows[hourly["id"]]["timezone"]) == ("@hourly", "UTC")

    only = runner.invoke(main, ["schedules", "list", "--agent", agent_id, "--paused"], env=env)
    assert only.exit_code == 0, only.output
    assert daily["id"] in only.output
    assert hourly["id"] not in only.output
    assert "Africa/Lagos" in only.output

    none = runner.invoke(main, ["schedules", "list", "--agent", str(uuid.uuid4())], env=env)
    assert none.exit_code == 0
    assert "no schedules" in none.output
    bad = runner.invoke(main, ["schedules", "list", "--agent", "nope"], env=env)
    assert bad.exit_code == 2
    assert "not an agent id" in bad.output
    assert "Traceback" not in bad.output
