"""A run submitted with an Idempotency-Key whose request failed after the run was created (the
server never gave its answer) is not run twice: the retry with the same key answers that run."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pasar_core.settings import Settings
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.runs import call, create_agent, scripted
from tests.e2e.test_hot_paths import log_in, services_of
from tests.e2e.test_runs_wait_for_the_database import GatedServer


@pytest.fixture
def gated() -> Iterator[GatedServer]:
    server = GatedServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.answer.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def client(pasar_settings: Settings) -> Iterator[TestClient]:
    settings = pasar_settings.with_overrides(
        db_read_pool_size=1, db_pool_timeout_s=0.2, allow_private_hosts=("127.0.0.1",)
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def hold_the_read_pool(client: TestClient) -> Any:
    """Every connection of the single-statement read pool (the view read after a run)."""
    reads = services_of(client).reads
    assert reads is not None
    assert client.portal is not None
    return client.portal.call(reads._pool.acquire)


def give_back(client: TestClient, connection: Any) -> None:
    reads = services_of(client).reads
    assert reads is not None
    assert client.portal is not None
    client.portal.call(reads._pool.release, connection)


def test_a_retry_after_a_failure_past_creation_answers_the_first_run(
    client: TestClient, gated: GatedServer
) -> None:
    headers = log_in(client)
    url = f"http://127.0.0.1:{gated.server_address[1]}/"
    config = scripted(
        call("http:get", url=url), tool_settings={"web": {"allow_hosts": ["127.0.0.1"]}}
    )
    agent_id = create_agent(client, headers, ["http:get"], config)
    keyed = {**headers, "Idempotency-Key": str(uuid.uuid4())}
    body = {"input": "go", "parameters": {"wait": True}}

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(client.post, f"/agents/{agent_id}/execute", json=body, headers=keyed)
        assert gated.asked.wait(30), "the run never called the tool"
        # The run is created and inside its tool call. Its request will fail after the run:
        # the view it answers with is read from a pool that is now full.
        held = hold_the_read_pool(client)
        try:
            # Meanwhile a duplicate is answered with the run the first request created.
            during = client.post(f"/agents/{agent_id}/execute", json=body, headers=keyed)
            gated.answer.set()
            failed = first.result(60)
        finally:
            give_back(client, held)

    assert failed.status_code == 503, failed.text
    assert failed.json()["error"]["code"] == "UNAVAILABLE"
    assert during.status_code in (200, 202, 503), during.text  # 503: its view read, too
    retried = client.post(f"/agents/{agent_id}/execute", json=body, headers=keyed)
    assert retried.status_code == 200, retried.text
    assert retried.headers["Idempotent-Replayed"] == "true"
    runs = client.get(f"/agents/{agent_id}/executions", headers=headers).json()["executions"]
    assert len(runs) == 1, runs  # one run, whatever happened to its requests
    assert retried.json()["execution_id"] == runs[0]["execution_id"]
    assert retried.json()["status"] == "succeeded"
    if during.status_code != 503:
        assert during.json()["execution_id"] == runs[0]["execution_id"]
    # The answer the retry got is the run's state now, not a stale copy.
    assert [step["type"] for step in retried.json()["steps"]][-1] == "model_call"
