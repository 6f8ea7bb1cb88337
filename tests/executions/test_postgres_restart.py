"""A PostgreSQL restart under a running run: the run's records wait for the database (the
journal retries while it is away) and the run ends once, with every step, on time or later."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pasar_core.embedded_pg import EmbeddedPostgres
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD, TEST_SECRET_KEY
from starlette.testclient import TestClient

from pasar.app import create_app


@pytest.fixture
def own_postgres() -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A PostgreSQL of this test alone (the session's is shared, so it is not restarted)."""
    base = Path(tempfile.mkdtemp(prefix="pasar-test-pg-restart-", dir="/tmp"))
    server = EmbeddedPostgres(base)
    try:
        yield server, server.start()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_a_run_survives_a_postgres_restart(
    own_postgres: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    server, url = own_postgres
    settings = Settings(data_dir=tmp_path / "data", database_url=url, secret_key=TEST_SECRET_KEY,
                        heartbeat_s=1, stale_after_s=4)  # fmt: skip
    settings.ensure_data_dir()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        credentials = {"email": "pg@example.com", "password": TEST_PASSWORD}
        client.post("/auth/signup", json=credentials)
        token = client.post("/auth/token", json=credentials).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        args = {"path": "pg.txt", "content": "once\n", "mode": "append"}
        script = [{"tool_calls": [{"name": "txt_write", "args": args}]}, {"content": "done"}]
        config = {"model": "scripted", "model_options": {"script": script, "delay_ms": 2500}}
        agent_id = client.post("/agents", json={"name": "pg", "tools": ["txt:write"],
                                                "config": config}, headers=headers).json()["agent_id"]  # fmt: skip
        body = {"input": "go", "parameters": {"wait": False}}
        execution_id = client.post(f"/agents/{agent_id}/execute", json=body,
                                   headers=headers).json()["execution_id"]  # fmt: skip
        files = settings.files_root
        deadline = time.monotonic() + 60
        while not list(files.rglob("pg.txt")) and time.monotonic() < deadline:
            time.sleep(0.02)
        server.stop()  # while the run waits on its second model call
        time.sleep(1)  # the run's records of the write's result pile up meanwhile
        assert server.start() == url
        deadline = time.monotonic() + 90
        run: dict[str, object] = {}
        while time.monotonic() < deadline:
            response = client.get(f"/executions/{execution_id}", headers=headers)
            if response.status_code == 200:
                run = response.json()
                if run["status"] in ("succeeded", "failed", "cancelled", "limit_exceeded"):
                    break
            time.sleep(0.2)
    assert run.get("status") == "succeeded", run
    assert "".join(p.read_text() for p in files.rglob("pg.txt")) == "once\n"
    steps = run["steps"]
    assert isinstance(steps, list)
    assert [step["type"] for step in steps] == [
        "model_call", "tool_call", "tool_result", "model_call",
    ]  # fmt: skip
