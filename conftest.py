"""Fixtures shared by every test directory: a started app on a fresh database, and users."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD as PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app


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
