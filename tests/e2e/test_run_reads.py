"""Reading runs is one statement each: a run (finished, or paused with its steps in events) and
a page of an agent's runs, the owner checked in the same statement."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.e2e.test_hot_paths import services_of
from tests.support.statements import Statements

WRITE = {"tool_calls": [{"name": "txt_write", "args": {"path": "a.txt", "content": "hi"}}]}


def agent(client: TestClient, headers: dict[str, str], *, gated: bool = False) -> str:
    config: dict[str, Any] = {
        "model": "scripted",
        "model_options": {"script": [WRITE, {"content": "done"}]},
    }
    if gated:
        config["approval"] = {"require_for": ["write"]}
    created = client.post(
        "/agents", json={"name": "r", "tools": ["txt:write"], "config": config}, headers=headers
    )
    assert created.status_code == 201, created.text
    return str(created.json()["agent_id"])


def run(client: TestClient, headers: dict[str, str], agent_id: str) -> dict[str, Any]:
    answer = client.post(
        f"/agents/{agent_id}/execute", json={"input": "go"}, headers=headers
    ).json()
    assert answer["status"] in ("succeeded", "awaiting_approval"), answer
    return dict(answer)


@pytest.fixture
def statements(client: TestClient) -> Iterator[Statements]:
    counter = Statements(services_of(client))
    try:
        yield counter
    finally:
        counter.close()


def read_warm(client: TestClient, path: str, headers: dict[str, str]) -> Any:
    for _ in range(4):  # once per pooled connection: asyncpg introspects types on first use
        client.get(path, headers=headers)
    return client.get(path, headers=headers)


def test_a_finished_and_a_paused_run_are_read_in_one_statement_each(
    client: TestClient, make_user, statements: Statements
) -> None:
    headers = make_user()
    finished = run(client, headers, agent(client, headers))
    paused = run(client, headers, agent(client, headers, gated=True))
    assert paused["status"] == "awaiting_approval"
    for answer in (finished, paused):
        path = f"/executions/{answer['execution_id']}"
        read_warm(client, path, headers)
        statements.seen.clear()
        read = client.get(path, headers=headers).json()
        assert len(statements.seen) == 1, statements.seen
        assert read["steps"] == answer["steps"]
        assert read["status"] == answer["status"]
    pending = client.get(f"/executions/{paused['execution_id']}", headers=headers).json()
    assert pending["pending_approval"]["tool"] == "txt:write"  # from the run's events
    assert [step["type"] for step in pending["steps"]] == ["model_call"]


def test_another_users_run_and_agent_are_not_found(
    client: TestClient, make_user, statements: Statements
) -> None:
    owner = make_user()
    agent_id = agent(client, owner)
    execution_id = run(client, owner, agent_id)["execution_id"]
    stranger = make_user()
    for path in (
        f"/executions/{execution_id}",
        f"/executions/{uuid.uuid4()}",
        f"/agents/{agent_id}/executions",
        f"/agents/{uuid.uuid4()}/executions",
        "/agents/not-an-id/executions",
    ):
        refused = read_warm(client, path, stranger)
        assert refused.status_code == 404, (path, refused.text)
        assert refused.json()["error"]["code"] == "NOT_FOUND"


def test_pages_of_runs_are_one_statement_each_and_meet_without_overlap(
    client: TestClient, make_user, statements: Statements
) -> None:
    headers = make_user()
    agent_id = agent(client, headers)
    empty = read_warm(client, f"/agents/{agent_id}/executions", headers).json()
    assert empty == {"executions": [], "next_cursor": None}
    ids = [run(client, headers, agent_id)["execution_id"] for _ in range(5)]
    seen: list[str] = []
    path = f"/agents/{agent_id}/executions?first=2"
    read_warm(client, path, headers)
    pages = 0
    while path:
        statements.seen.clear()
        page = client.get(path, headers=headers).json()
        assert len(statements.seen) == 1, statements.seen
        seen += [execution["execution_id"] for execution in page["executions"]]
        assert all(len(execution["steps"]) == 4 for execution in page["executions"])
        pages += 1
        cursor = page["next_cursor"]
        path = f"/agents/{agent_id}/executions?first=2&after={cursor}" if cursor else ""
    assert seen == ids[::-1]  # newest first, each once
    assert pages == 3
    bad = client.get(f"/agents/{agent_id}/executions?after=%%%", headers=headers)
    assert bad.status_code == 400
