"""An agent's threads through REST and GraphQL: list, read and delete the caller's own; a
deleted thread's memory is empty for the next run; another agent's or user's thread is
NOT_FOUND and deleting it changes nothing."""

from __future__ import annotations

import time
from typing import Any

from starlette.testclient import TestClient

ECHO = {"model": "scripted", "model_options": {"script": [{"echo": True}]}, "memory": "thread"}


def _agent(client: TestClient, headers: dict[str, str]) -> str:
    created = client.post("/agents", json={"name": "t", "config": ECHO}, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["agent_id"])


def _say(client: TestClient, headers: dict[str, str], agent_id: str, text: str, thread: str) -> Any:
    body = {"input": text, "parameters": {"thread_id": thread}}
    run = client.post(f"/agents/{agent_id}/execute", json=body, headers=headers)
    assert run.status_code in (200, 202), run.text
    return run.json()


def test_list_read_and_delete_a_thread_empties_its_memory(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = _agent(client, headers)
    _say(client, headers, agent_id, "my name is Ana", "t1")
    _say(client, headers, agent_id, "unrelated", "t2")
    _say(client, headers, agent_id, "what is my name?", "t1")

    threads = client.get(f"/agents/{agent_id}/threads", headers=headers).json()["threads"]
    assert [(t["thread_id"], t["turns"]) for t in threads] == [("t1", 2), ("t2", 1)]
    turns = client.get(f"/agents/{agent_id}/threads/t1", headers=headers).json()["turns"]
    assert [turn["input"] for turn in turns] == ["my name is Ana", "what is my name?"]
    assert all(turn["status"] == "succeeded" for turn in turns)

    assert client.delete(f"/agents/{agent_id}/threads/t1", headers=headers).status_code == 204
    assert client.get(f"/agents/{agent_id}/threads/t1", headers=headers).status_code == 404
    left = client.get(f"/agents/{agent_id}/threads", headers=headers).json()["threads"]
    assert [t["thread_id"] for t in left] == ["t2"]
    # The next run on the deleted id starts with no memory: the model sees only its input.
    fresh = _say(client, headers, agent_id, "who am I?", "t1")
    assert fresh["output"]["message"] == "human: who am I?"
    # the other thread kept its memory
    kept = _say(client, headers, agent_id, "again", "t2")
    assert "human: unrelated" in kept["output"]["message"]


def test_another_agents_or_users_thread_is_not_found(client: TestClient, make_user) -> None:
    owner, stranger = make_user(), make_user()
    agent_id, other_agent = _agent(client, owner), _agent(client, owner)
    strangers_agent = _agent(client, stranger)
    _say(client, owner, agent_id, "secret", "t1")
    _say(client, stranger, strangers_agent, "theirs", "s1")

    for path in (f"/agents/{other_agent}/threads/t1", f"/agents/{agent_id}/threads/s1",
                 f"/agents/{agent_id}/threads/nothing"):  # fmt: skip
        for method in ("GET", "DELETE"):
            missing = client.request(method, path, headers=owner)
            assert missing.status_code == 404, (method, path, missing.text)
            assert missing.json()["error"]["code"] == "NOT_FOUND"
    for method in ("GET", "DELETE"):
        hidden = client.request(method, f"/agents/{agent_id}/threads/t1", headers=stranger)
        assert hidden.status_code == 404
    assert client.get(f"/agents/{agent_id}/threads", headers=stranger).status_code == 404
    assert client.get(f"/agents/{other_agent}/threads", headers=owner).json()["threads"] == []
    # nothing was deleted
    turns = client.get(f"/agents/{agent_id}/threads/t1", headers=owner).json()["turns"]
    assert [turn["input"] for turn in turns] == ["secret"]


def test_threads_through_graphql(client: TestClient, make_user) -> None:
    headers, stranger = make_user(), make_user()
    agent_id = _agent(client, headers)
    _say(client, headers, agent_id, "one", "g1")
    _say(client, headers, agent_id, "two", "g1")

    def gql(document: str, who: dict[str, str] = headers) -> Any:
        return client.post("/graphql", json={"query": document}, headers=who).json()

    listed = gql(f'{{ threads(agentId: "{agent_id}") {{ threadId turns }} }}')
    assert listed["data"]["threads"] == [{"threadId": "g1", "turns": 2}]
    read = gql(f'{{ thread(agentId: "{agent_id}", threadId: "g1") {{ input status }} }}')
    assert [t["input"] for t in read["data"]["thread"]] == ["one", "two"]
    hidden = gql(f'mutation {{ deleteThread(agentId: "{agent_id}", threadId: "g1") }}', stranger)
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    deleted = gql(f'mutation {{ deleteThread(agentId: "{agent_id}", threadId: "g1") }}')
    assert deleted["data"]["deleteThread"] == 2
    gone = gql(f'{{ thread(agentId: "{agent_id}", threadId: "g1") {{ input }} }}')
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_a_thread_with_a_run_still_going_is_not_deleted(client: TestClient, make_user) -> None:
    headers = make_user()
    script = [{"tool_calls": [{"name": "txt_read", "args": {"path": "a.txt"}}]}, {"content": "ok"}]
    config = {"model": "scripted", "model_options": {"script": script}, "memory": "thread",
              "approval": {"require_for": ["read"]}}  # fmt: skip
    created = client.post(
        "/agents", json={"name": "p", "tools": ["txt:read"], "config": config}, headers=headers
    )
    agent_id = created.json()["agent_id"]
    paused = _say(client, headers, agent_id, "read it", "busy")
    assert paused["status"] == "awaiting_approval"
    refused = client.delete(f"/agents/{agent_id}/threads/busy", headers=headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "CONFLICT"
    turns = client.get(f"/agents/{agent_id}/threads/busy", headers=headers).json()["turns"]
    assert [turn["status"] for turn in turns] == ["awaiting_approval"]
    decided = client.post(f"/executions/{paused['execution_id']}/approval",
                          json={"decision": "reject"}, headers=headers)  # fmt: skip
    assert decided.status_code in (200, 202), decided.text
    for _ in range(200):  # until the resumed run ends (a mechanism, not a duration)
        run = client.get(f"/executions/{paused['execution_id']}", headers=headers).json()
        if run["finished_at"] is not None:
            break
        time.sleep(0.05)
    assert run["status"] == "succeeded", run
    assert client.delete(f"/agents/{agent_id}/threads/busy", headers=headers).status_code == 204


def test_a_deleted_threads_answers_never_come_back_from_the_cache(
    client: TestClient, make_user
) -> None:
    headers = make_user()
    config = ECHO | {"cache_ttl_s": 3600}
    agent_id = client.post("/agents", json={"name": "c", "config": config}, headers=headers).json()[
        "agent_id"
    ]
    _say(client, headers, agent_id, "remember me", "c1")
    again = _say(client, headers, agent_id, "remember me", "c1")
    assert again["cached"] is False
    assert client.delete(f"/agents/{agent_id}/threads/c1", headers=headers).status_code == 204
    fresh = _say(client, headers, agent_id, "remember me", "c1")
    assert fresh["cached"] is False
    assert fresh["output"]["message"] == "human: remember me"
