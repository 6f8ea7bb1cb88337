"""Many runs at once on a database pool of two connections: each run waits for a connection
when it writes its steps (patient checkouts) instead of crashing and being resumed later, so
every run succeeds at its first attempt with no interruption recorded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from pasar_core.settings import Settings
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.runs import call, create_agent, scripted
from tests.e2e.test_hot_paths import log_in

RUNS = 24
TERMINAL = {"succeeded", "failed", "cancelled", "limit_exceeded"}


@pytest.fixture
def client(pasar_settings: Settings) -> Iterator[TestClient]:
    settings = pasar_settings.with_overrides(db_pool_size=2, db_pool_timeout_s=0.2)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def submit(client: TestClient, headers: dict[str, str], agent_id: str, index: int) -> str:
    """Submit one run; a busy pool answers a typed 503, and the same key is retried."""
    keyed = {**headers, "Idempotency-Key": f"tiny-pool-{index}"}
    while True:
        started = client.post(
            f"/agents/{agent_id}/execute",
            json={"input": f"go {index}", "parameters": {"wait": False}},
            headers=keyed,
        )
        if started.status_code in (200, 202):
            return str(started.json()["execution_id"])
        assert started.status_code in (409, 503), started.text
        code = started.json()["error"]["code"]
        assert code in ("UNAVAILABLE", "IDEMPOTENCY_KEY_IN_PROGRESS"), started.text
        time.sleep(0.1)


def test_runs_on_a_tiny_pool_all_succeed_at_their_first_attempt(client: TestClient) -> None:
    headers = log_in(client)
    # A model that waits, a tool call whose `write` effect is made durable before it acts,
    # and the run's end: each run checks out connections several times.
    config = scripted(call("txt:write", path="note.txt", content="hi"))
    config["model_options"]["delay_ms"] = 100
    agent_id = create_agent(client, headers, ["txt:write"], config)

    with ThreadPoolExecutor(max_workers=RUNS) as pool:
        ids = list(pool.map(lambda i: submit(client, headers, agent_id, i), range(RUNS)))
    assert len(set(ids)) == RUNS

    deadline = time.monotonic() + 120
    views: dict[str, dict[str, object]] = {}
    while len(views) < RUNS:
        assert time.monotonic() < deadline, f"{RUNS - len(views)} runs never finished"
        for execution_id in set(ids) - set(views):
            read = client.get(f"/executions/{execution_id}", headers=headers)
            if read.status_code == 200 and read.json()["status"] in TERMINAL:
                views[execution_id] = read.json()
        time.sleep(0.1)

    assert {view["status"] for view in views.values()} == {"succeeded"}, views
    assert {view["attempts"] for view in views.values()} == {1}  # never resumed
    for execution_id in ids:
        events = client.get(f"/executions/{execution_id}/events", headers=headers)
        assert events.status_code == 200, events.text
        assert "interrupted" not in events.text
