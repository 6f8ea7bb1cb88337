"""A real provider path: langchain-openai against a local OpenAI-compatible stub server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pasar_core.settings import Settings
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.support import anthropic_stub, ollama_stub, openai_stub
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


def login(client: TestClient) -> dict[str, str]:
    credentials = {"email": "providers@example.com", "password": "correct horse battery staple"}
    client.post("/auth/signup", json=credentials)
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


# provider, its stub, the environment that points pasar at it, and what the stub writes
PROVIDERS = [
    ("openai", openai_stub.build_stub,
     lambda base: {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": f"{base}/v1"}, "from the stub"),
    ("anthropic", anthropic_stub.build_stub,
     lambda base: {"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": base},
     "from the anthropic stub"),
    ("ollama", ollama_stub.build_stub, lambda base: {"OLLAMA_BASE_URL": base},
     "from the ollama stub"),
]  # fmt: skip


# Where each API carries a tool's result back to the model.
TOOL_RESULT_SENT: dict[str, Any] = {
    "openai": lambda body: body["messages"][-1]["content"],
    "anthropic": lambda body: anthropic_stub.tool_result_text(body["messages"][-1]["content"][-1]),
    "ollama": lambda body: body["messages"][-1]["content"],
}


@pytest.mark.parametrize(
    ("provider", "build", "environment", "written"), PROVIDERS, ids=[p[0] for p in PROVIDERS]
)
def test_each_provider_factory_runs_a_tool_calling_agent_against_its_stub(
    pasar_settings: Settings, provider: str, build: Any, environment: Any, written: str
) -> None:
    stub_app = build()
    with serve_in_thread(stub_app) as base, TestClient(
        create_app(pasar_settings.with_overrides(env=environment(base)))
    ) as client:  # fmt: skip
        headers = login(client)
        config = {"model": f"{provider}:stub-model", "model_options": {"max_retries": 0}}
        agent = client.post("/agents", json={"name": provider, "tools": ["txt:write"],
                                             "config": config}, headers=headers).json()  # fmt: skip
        run = client.post(
            f"/agents/{agent['agent_id']}/execute", json={"input": "write it"}, headers=headers
        ).json()
        stored = client.get("/files/stub.txt", headers=headers)
    assert run["status"] == "succeeded", run
    assert [step["type"] for step in run["steps"]] == [
        "model_call", "tool_call", "tool_result", "model_call",
    ]  # fmt: skip
    assert run["steps"][1]["args"] == {"path": "stub.txt", "content": written}
    assert stored.content == written.encode()
    result = run["steps"][2]["result"]
    assert result["path"] == "stub.txt"
    requests = stub_app.state.requests
    assert len(requests) == 2
    bodies = [r.get("body", r) for r in requests]
    assert all(body["model"] == "stub-model" for body in bodies)
    # The second model call carried the tool's result, and its answer (streamed word by word)
    # is what the run ended with.
    sent_back = TOOL_RESULT_SENT[provider](bodies[1])
    assert json.loads(sent_back) == result
    assert run["output"]["message"].split() == f"stub done: {sent_back}".split()
    if provider == "anthropic":
        sent = requests[0]["headers"]
        assert "sk-ant-test" in (sent.get("x-api-key"), sent.get("authorization", "")[7:])
