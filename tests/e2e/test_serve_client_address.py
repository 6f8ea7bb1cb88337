"""`pasar serve` counts log-ins by the TCP peer: a forged X-Forwarded-For from loopback (which
uvicorn would believe by default) does not give a guesser a fresh budget per request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD

from tests.e2e.test_serve import stop, wait_until_ready
from tests.support.processes import Processes
from tests.support.servers import free_port


def test_forged_forwarded_for_does_not_escape_the_log_in_budget(
    pasar_settings: Settings, tmp_path: Path, processes_started: Processes
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {
        "DATABASE_URL": pasar_settings.database_url or "",
        "PASAR_DATA_DIR": str(tmp_path / "data"),
        "PASAR_SECRET_KEY": pasar_settings.secret_key or "",
        "PASAR_PORT": str(port),
        "PASAR_LOGIN_FAILURES_PER_PAIR": "2",
    }
    process = processes_started.start(
        [sys.executable, "-m", "pasar", "serve", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_ready(base, process)
        credentials = {"email": "peer@example.com", "password": TEST_PASSWORD}
        assert httpx.post(f"{base}/auth/signup", json=credentials).status_code == 201
        wrong = credentials | {"password": "not the password"}
        statuses = [
            httpx.post(
                f"{base}/auth/token", json=wrong, headers={"X-Forwarded-For": f"198.18.0.{i}"}
            ).status_code
            for i in range(1, 4)
        ]
        assert statuses == [401, 401, 429]
    finally:
        stop(process)
