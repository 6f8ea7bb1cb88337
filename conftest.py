"""Fixtures shared by every test directory: a started app on a fresh database, and users; and
the session's check that no process the tests started outlives it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD as PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.support import processes


def pytest_configure(config: pytest.Config) -> None:
    # Every process the tests start inherits this marker (scripts/test may choose it).
    os.environ.setdefault(processes.SESSION_MARKER, uuid.uuid4().hex)


def pytest_sessionfinish(session: pytest.Session) -> None:
    leaked = processes.leftovers(os.environ[processes.SESSION_MARKER])
    if not leaked:
        return
    lines = [processes.describe(process) for process in leaked]
    processes.kill_all(leaked)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "processes started by the tests outlived the session", red=True)
        for line in lines:
            reporter.write_line(f"killed {line}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def processes_started() -> Iterator[processes.Processes]:
    """Start processes that die (with everything they started) when the test ends."""
    with processes.Processes() as started:
        yield started


@pytest.fixture
def client(pasar_settings: Settings) -> Iterator[TestClient]:
    """The whole app (lifespan included) on a fresh migrated database."""
    with TestClient(create_app(pasar_settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def make_user(client: TestClient) -> Callable[..., dict[str, str]]:
    """make_user(email=None) -> Authorization headers of a new, logged-in user."""

    def make(email: str | None = None) -> dict[str, str]:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        credentials = {"email": email, "password": PASSWORD}
        assert client.post("/auth/signup", json=credentials).status_code == 201
        token = client.post("/auth/token", json=credentials).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    return make
