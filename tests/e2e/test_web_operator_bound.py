"""By default a server lets no agent open private hosts, whatever its allow_hosts says."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app


@pytest.fixture
def strict_client(pasar_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(pasar_settings.with_overrides(allow_private_hosts=()))) as client:
        yield client


def test_default_bound_refuses_agent_allow_hosts(strict_client: TestClient) -> None:
    client = strict_client
    credentials = {"email": "bound@example.com", "password": TEST_PASSWORD}
    client.post("/auth/signup", json=credentials)
    headers = {
        "Authorization": "Bearer "
        + client.post("/auth/token", json=credentials).json()["access_token"]
    }
    config = {
        "model": "scripted",
        "model_options": {"script": [
            {"tool_calls": [{"name": "http_get", "args": {"url": "http://127.0.0.1:9/"}}]},
            {"content": "refused"},
        ]},
        "tool_settings": {"web": {"allow_hosts": ["127.0.0.1"]}},
    }  # fmt: skip
    agent = client.post(
        "/agents", json={"name": "w", "tools": ["http:get"], "config": config}, headers=headers
    )
    assert agent.status_code == 201, agent.text
    run = client.post(
        f"/agents/{agent.json()['agent_id']}/execute", json={"input": "go"}, headers=headers
    ).json()
    assert run["status"] == "succeeded"
    assert "PASAR_ALLOW_PRIVATE_HOSTS" in run["steps"][2]["error"]
