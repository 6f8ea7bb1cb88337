"""`memory: "summary"`: a thread whose history passes the trigger is summarised by the agent's
own model (LangChain's summarisation middleware) before the model answers, keeping the latest
messages; played with the scripted model, which answers with the conversation it received."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pasar_core.settings import Settings
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.memory.test_knowledge_api import signed_in

SUMMARY_MARK = "Here is a summary of the conversation to date:"


@pytest.fixture
def client(pasar_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(pasar_settings)) as client:
        yield client


def run(client: TestClient, agent: str, headers: dict[str, str], text: str) -> dict[str, Any]:
    answer = client.post(f"/agents/{agent}/execute", headers=headers,
                         json={"input": text, "parameters": {"thread_id": "t1"}})  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "succeeded", body
    return body


def test_a_long_thread_is_summarised_and_its_latest_messages_kept(client: TestClient) -> None:
    headers = signed_in(client, "summary@example.com")
    config = {"model": "scripted", "model_options": {"script": [{"echo": True}]},
              "memory": "summary", "summary": {"trigger_tokens": 300, "keep_messages": 2}}  # fmt: skip
    agent = client.post("/agents", json={"name": "summariser", "config": config},
                        headers=headers).json()["agent_id"]  # fmt: skip
    first = run(client, agent, headers, "turn one: " + "apples " * 200)
    assert SUMMARY_MARK not in first["output"]["message"]  # one message: under the trigger
    run(client, agent, headers, "turn two: " + "pears " * 200)
    third = run(client, agent, headers, "turn three: what did we discuss?")
    seen = third["output"]["message"].splitlines()
    # The model saw a summary first, then only the kept messages (the last answer and the new
    # input), not the first turns as messages of their own.
    assert seen[0] == f"human: {SUMMARY_MARK}"
    assert seen[-1] == "human: turn three: what did we discuss?"
    assert not any(line.startswith("human: turn one") for line in seen)
    assert [step["type"] for step in third["steps"]] == ["model_call"]


def test_a_short_thread_is_replayed_as_it_is(client: TestClient) -> None:
    headers = signed_in(client, "short@example.com")
    config = {"model": "scripted", "model_options": {"script": [{"echo": True}]},
              "memory": "summary", "summary": {"trigger_tokens": 100_000}}  # fmt: skip
    agent = client.post("/agents", json={"name": "short", "config": config},
                        headers=headers).json()["agent_id"]  # fmt: skip
    run(client, agent, headers, "my name is Ada")
    second = run(client, agent, headers, "what is my name?")["output"]["message"]
    assert SUMMARY_MARK not in second
    assert second.splitlines()[0] == "human: my name is Ada"


def test_thread_ids_need_a_thread_keeping_memory(client: TestClient) -> None:
    headers = signed_in(client, "nothread@example.com")
    config = {"model": "scripted", "model_options": {"script": [{"content": "ok"}]}}
    agent = client.post("/agents", json={"name": "plain", "config": config},
                        headers=headers).json()["agent_id"]  # fmt: skip
    answer = client.post(f"/agents/{agent}/execute", headers=headers,
                         json={"input": "x", "parameters": {"thread_id": "t1"}})  # fmt: skip
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "BAD_REQUEST")
