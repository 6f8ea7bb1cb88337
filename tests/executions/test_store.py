"""The owner of an execution's life: the transition table, and what a run costs in commits."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from pasar_core.executions.status import (
    INITIAL,
    PAUSED,
    TERMINAL,
    TRANSITIONS,
    ExecutionStatus,
    IllegalTransition,
    allowed,
    check_transition,
)
from pasar_core.settings import Settings
from sqlalchemy import event
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from pasar.app import create_app

S = ExecutionStatus
LEGAL = {
    (S.QUEUED, S.RUNNING), (S.QUEUED, S.CANCELLED), (S.QUEUED, S.FAILED),
    (S.RUNNING, S.SUCCEEDED), (S.RUNNING, S.FAILED), (S.RUNNING, S.LIMIT_EXCEEDED),
    (S.RUNNING, S.CANCELLED), (S.RUNNING, S.AWAITING_APPROVAL),
    (S.RUNNING, S.AWAITING_AUTHORIZATION), (S.RUNNING, S.QUEUED),
    (S.AWAITING_APPROVAL, S.QUEUED), (S.AWAITING_APPROVAL, S.CANCELLED),
    (S.AWAITING_APPROVAL, S.FAILED),  # its approval expired (APPROVAL_EXPIRED)
    (S.AWAITING_AUTHORIZATION, S.QUEUED), (S.AWAITING_AUTHORIZATION, S.CANCELLED),
}  # fmt: skip


@pytest.mark.parametrize(("current", "wanted"), list(itertools.product(S, S)))
def test_every_transition_is_legal_or_refused(current: S, wanted: S) -> None:
    if (current, wanted) in LEGAL:
        check_transition(current, wanted)
        assert allowed(current, wanted)
    else:
        with pytest.raises(IllegalTransition) as refused:
            check_transition(current.value, wanted.value)
        assert refused.value.code == "ILLEGAL_TRANSITION"
        assert refused.value.details == {"from": current.value, "to": wanted.value}
        assert not allowed(current, wanted)


def test_the_table_names_every_status_and_terminal_ones_lead_nowhere() -> None:
    assert set(TRANSITIONS) == set(S)
    assert all(not TRANSITIONS[status] for status in TERMINAL)
    assert {status for status in S if status.terminal} == TERMINAL
    assert {status for status in S if status.paused} == PAUSED
    assert {S.QUEUED, S.SUCCEEDED} == INITIAL


class ExecutionCommits:
    """Counts committed transactions that touched the executions tables (any connection of
    this process: the app runs in the test client's thread)."""

    def __init__(self) -> None:
        self.count = 0
        self._touched: set[int] = set()

    def statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "execution" in statement:
            self._touched.add(id(conn.connection.dbapi_connection))

    def commit(self, conn: Any) -> None:
        key = id(conn.connection.dbapi_connection)
        if key in self._touched:
            self._touched.discard(key)
            self.count += 1

    def rollback(self, conn: Any) -> None:
        self._touched.discard(id(conn.connection.dbapi_connection))


@pytest.fixture
def client(pasar_settings: Settings) -> Iterator[TestClient]:
    """The app with a gathering window longer than any run here: a slow (loaded) machine
    would otherwise write a run's steps in more batches, which is the window doing its job;
    what is counted is what the run itself forces."""
    settings = pasar_settings.with_overrides(events_flush_s=30.0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def commits() -> Iterator[ExecutionCommits]:
    counter = ExecutionCommits()
    event.listen(Engine, "before_cursor_execute", counter.statement)
    event.listen(Engine, "commit", counter.commit)
    event.listen(Engine, "rollback", counter.rollback)
    try:
        yield counter
    finally:
        event.remove(Engine, "before_cursor_execute", counter.statement)
        event.remove(Engine, "commit", counter.commit)
        event.remove(Engine, "rollback", counter.rollback)


def test_a_run_with_one_tool_call_commits_at_most_three_times(
    client: TestClient, make_user, commits: ExecutionCommits
) -> None:
    """Create; the steps and events in batches (a `write` waits for its `tool_call` to be
    durable); finish. Every step and event is still stored, in order."""
    headers = make_user()
    script = [
        {"tool_calls": [{"name": "txt_write", "args": {"path": "a.txt", "content": "x"}}]},
        {"content": "done"},
    ]
    config = {"model": "scripted", "model_options": {"script": script}}
    body = {"name": "lean", "tools": ["txt:write"], "config": config}
    agent_id = client.post("/agents", json=body, headers=headers).json()["agent_id"]
    before = commits.count
    run = client.post(f"/agents/{agent_id}/execute", json={"input": "go"}, headers=headers).json()
    spent = commits.count - before
    assert run["status"] == "succeeded", run
    assert [step["type"] for step in run["steps"]] == [
        "model_call", "tool_call", "tool_result", "model_call",
    ]  # fmt: skip
    assert 1 <= spent <= 3, spent
    events = client.get(f"/executions/{run['execution_id']}/events", headers=headers).text
    ids = [int(line[4:]) for line in events.splitlines() if line.startswith("id: ")]
    assert ids == list(range(1, len(ids) + 1))  # every event stored, numbered in order
    kinds = [line[7:] for line in events.splitlines() if line.startswith("event: ")]
    assert kinds == ["status", "status", "model_call", "tool_call", "tool_result",
                     "model_call", "status"]  # fmt: skip
