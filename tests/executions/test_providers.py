"""A real provider path: langchain-openai against a local OpenAI-compatible stub server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pasar_core.settings import Settings
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.support.openai_stub import build_stub
from tests.support.servers import serve_in_thread


@pytest.fixture
def stub() -> Iterator[tuple[str, list[dict[str, object]]]]:
    app = build_stub()
    with serve_in_thread(app) as base_url:
        yield base_url, app.state.requests


@pytest.fixture
def stub_client(pasar_settings: Settings, stub) -> Iterator[TestClient]:
    base_url, _ = stub
    env = {"PASAR_OPENAI_COMPATIBLE_BASE_URL": f"{base_url}/v1"}
    with TestClient(create_app(pasar_settings.with_overrides(env=env))) as client:
        yield client


def test_openai_compatible_provider_runs_a_tool_calling_agent(
    stub_client: TestClient, stub
) -> None:
    client = stub_client
    credentials = {"email": "stub@example.com", "password": "correct horse battery staple"}
    client.post("/auth/signup", json=credentials)
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    agent = client.post(
        "/agents",
        json={"name": "stubbed", "tools": ["txt:write"],
              "config": {"model": "openai-compatible:stub-model", "model_options": {"temperature": 0}}},
        headers=headers,
    ).json()  # fmt: skip
    run = client.post(
        f"/agents/{agent['agent_id']}/execute", json={"input": "write it"}, headers=headers
    ).json()
    assert run["status"] == "succeeded", run
    assert run["output"]["message"].startswith("stub done:")
    assert [step["type"] for step in run["steps"]] == [
        "model_call",
        "tool_call",
        "tool_result",
        "model_call",
    ]
    assert run["steps"][1]["args"] == {"path": "stub.txt", "content": "from the stub"}
    _, requests = stub
    assert requests[0]["model"] == "stub-model"
    assert requests[0]["tools"][0]["function"]["name"] == "txt_write"


def test_fallback_model_answers_when_the_first_fails(stub_client: TestClient, stub) -> None:
    client = stub_client
    credentials = {"email": "fallback@example.com", "password": "correct horse battery staple"}
    client.post("/auth/signup", json=credentials)
    headers = {
        "Authorization": "Bearer "
        + client.post("/auth/token", json=credentials).json()["access_token"]
    }
    config = {"model": "openai-compatible:broken", "fallbacks": ["openai-compatible:good"],
              "model_options": {"max_retries": 0}}  # fmt: skip
    agent = client.post("/agents", json={"name": "f", "config": config}, headers=headers).json()
    run = client.post(
        f"/agents/{agent['agent_id']}/execute", json={"input": "hi"}, headers=headers
    ).json()
    assert run["status"] == "succeeded", run
    assert run["output"]["message"].startswith("stub done: hello from the stub")
    _, requests = stub
    assert [r["model"] for r in requests] == ["broken", "good"]
