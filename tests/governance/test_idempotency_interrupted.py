"""A run submitted with an Idempotency-Key whose request failed after the run was created (the
server never gave its answer) is not run twice: the retry with the same key answers that run.
So on every surface that starts runs: REST execute, GraphQL `executeAgent`, and OpenAI's
`POST /v1/chat/completions`."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
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


def interrupted_after_creation(
    client: TestClient, gated: GatedServer, send: Callable[[], Any]
) -> tuple[Any, Any]:
    """`send` (a request that starts the gated run) answered while the read pool is full: the
    run is created and inside its tool call when the pool fills, so the request fails after
    creating it. Returns (that answer, a duplicate's sent meanwhile)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(send)
        assert gated.asked.wait(30), "the run never called the tool"
        held = hold_the_read_pool(client)
        try:
            during = send()
            gated.answer.set()
            failed = first.result(60)
        finally:
            give_back(client, held)
    return failed, during


def gated_agent(client: TestClient, headers: dict[str, str], gated: GatedServer) -> str:
    url = f"http://127.0.0.1:{gated.server_address[1]}/"
    config = scripted(
        call("http:get", url=url), tool_settings={"web": {"allow_hosts": ["127.0.0.1"]}}
    )
    return create_agent(client, headers, ["http:get"], config)


EXECUTE = """mutation($id: ID!, $key: String) { executeAgent(agentId: $id, input: "go",
    parameters: {wait: true}, idempotencyKey: $key) { id status steps } }"""


def test_graphql_execute_agent_retried_after_a_failure_past_creation_answers_the_first_run(
    client: TestClient, gated: GatedServer
) -> None:
    headers = log_in(client)
    agent_id = gated_agent(client, headers, gated)
    variables = {"id": agent_id, "key": str(uuid.uuid4())}

    def send() -> Any:
        sent = {"query": EXECUTE, "variables": variables}
        response = client.post("/graphql", json=sent, headers=headers)
        assert response.status_code in (200, 503), response.text  # 503: UNAVAILABLE alone
        return response.json()

    failed, during = interrupted_after_creation(client, gated, send)

    assert failed["errors"][0]["extensions"]["code"] == "UNAVAILABLE", failed
    retried = send()
    assert "errors" not in retried, retried
    runs = client.get(f"/agents/{agent_id}/executions", headers=headers).json()["executions"]
    assert len(runs) == 1, runs  # one run, whatever happened to its requests
    execution = retried["data"]["executeAgent"]
    assert execution["id"] == runs[0]["execution_id"]
    assert execution["status"] == "succeeded"
    assert [step["type"] for step in execution["steps"]][-1] == "model_call"  # as it is now
    if "errors" not in during:
        assert during["data"]["executeAgent"]["id"] == runs[0]["execution_id"]
    else:
        assert during["errors"][0]["extensions"]["code"] == "UNAVAILABLE", during


def test_a_chat_completion_retried_after_a_failure_past_creation_answers_the_first_run(
    client: TestClient, gated: GatedServer
) -> None:
    headers = log_in(client)
    agent_id = gated_agent(client, headers, gated)
    keyed = {**headers, "Idempotency-Key": str(uuid.uuid4())}
    body = {"model": agent_id, "messages": [{"role": "user", "content": "go"}]}

    def send() -> Any:
        return client.post("/v1/chat/completions", json=body, headers=keyed)

    failed, during = interrupted_after_creation(client, gated, send)

    assert failed.status_code == 503, failed.text
    assert failed.json()["error"]["code"] == "unavailable"
    retried = send()
    runs = client.get(f"/agents/{agent_id}/executions", headers=headers).json()["executions"]
    assert len(runs) == 1, runs  # one run, whatever happened to its requests
    assert retried.status_code == 200, retried.text
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert during.status_code in (200, 503), during.text  # 503: its read, too
    run = runs[0]
    completion = retried.json()
    assert completion["object"] == "chat.completion"
    assert completion["id"] == f"chatcmpl-{uuid.UUID(run['execution_id']).hex}"
    assert completion["choices"][0]["message"]["content"] == "done"
    assert completion["pasar"]["execution_id"] == run["execution_id"]
    if during.status_code == 200:
        assert during.json() == completion


def test_a_chat_completion_retried_while_its_run_is_still_running_says_so_then_answers_it(
    pasar_settings: Settings, gated: GatedServer
) -> None:
    """The first request is cut off (its wait ends) while the run goes on; a retry with the
    same key is told the run is still running (typed, naming it), and once it ends, a retry
    answers its completion. Never a second run."""
    settings = pasar_settings.with_overrides(openai_wait_s=0.5, allow_private_hosts=("127.0.0.1",))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        headers = log_in(client)
        agent_id = gated_agent(client, headers, gated)
        keyed = {**headers, "Idempotency-Key": str(uuid.uuid4())}
        body = {"model": agent_id, "messages": [{"role": "user", "content": "go"}]}
        first = client.post("/v1/chat/completions", json=body, headers=keyed)
        assert first.status_code == 504, first.text
        assert gated.asked.wait(30), "the run never called the tool"
        execution_id = first.json()["error"]["pasar"]["execution_id"]
        still = client.post("/v1/chat/completions", json=body, headers=keyed)
        assert still.status_code == 504, still.text
        error = still.json()["error"]
        assert error["code"] == "run_still_running"
        assert error["pasar"] == {"execution_id": execution_id, "status": "running"}
        gated.answer.set()
        for _ in range(3000):  # until the run ended
            run = client.get(f"/executions/{execution_id}", headers=headers).json()
            if run["status"] == "succeeded":
                break
            time.sleep(0.01)
        else:
            raise AssertionError(f"the run did not end: {run}")
        retried = client.post("/v1/chat/completions", json=body, headers=keyed)
        assert retried.status_code == 200, retried.text
        assert retried.json()["pasar"]["execution_id"] == execution_id
        assert retried.json()["choices"][0]["message"]["content"] == "done"
        runs = client.get(f"/agents/{agent_id}/executions", headers=headers).json()
        assert [run["execution_id"] for run in runs["executions"]] == [execution_id]
