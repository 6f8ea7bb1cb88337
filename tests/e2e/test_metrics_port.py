"""`PASAR_METRICS_PORT`: /metrics on a port of its own (the API's and `pasar worker`'s), 404 on
the public port; the finished executions' counts are read at most once per TTL."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pasar_core.services import Services
from pasar_core.settings import Settings
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from pasar.app import create_app
from pasar.metrics import ExecutionCounts
from tests.executions.test_rq_executor import (
    login,
    redis_url,
    rq_client,
    rq_settings,
    scripted_agent,
    start_run,
    start_worker,
    wait_for,
)
from tests.support.servers import free_port

__all__ = ["redis_url", "rq_client", "rq_settings", "start_worker"]  # fixtures, used by name


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def run_one(client: TestClient, headers: dict[str, str]) -> None:
    config = {"model": "scripted", "model_options": {"script": [{"content": "hi"}]}}
    agent = client.post("/agents", json={"name": "m", "config": config}, headers=headers)
    response = client.post(f"/agents/{agent.json()['agent_id']}/execute", json={"input": "x"},
                           headers=headers)  # fmt: skip
    assert response.json()["status"] == "succeeded", response.text


def test_metrics_are_served_on_their_own_port_only(pasar_settings: Settings, make_user) -> None:
    port = free_port()
    settings = pasar_settings.with_overrides(host="127.0.0.1", metrics_port=port)
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": "Bearer x"}
        public = client.get("/metrics")
        assert public.status_code == 404
        assert "pasar_http_requests" not in public.text
        credentials = {"email": "port@example.com", "password": "correct horse battery staple"}
        client.post("/auth/signup", json=credentials)
        token = client.post("/auth/token", json=credentials).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        run_one(client, headers)
        found = scrape(port)
    assert found[("pasar_executions", (("status", "succeeded"),))] == 1  # read at scrape time
    execute = (("method", "POST"), ("route", "/agents/{agent_id}/execute"), ("status", "200"))
    assert found[("pasar_http_requests_total", execute)] == 1
    public_scrape = (("method", "GET"), ("route", "/metrics"), ("status", "404"))
    assert found[("pasar_http_requests_total", public_scrape)] == 1
    with pytest.raises(httpx.ConnectError):  # the listener ends with the app
        httpx.get(f"http://127.0.0.1:{port}/metrics")


def test_finished_counts_are_read_once_per_ttl(client: TestClient, make_user) -> None:
    headers = make_user()
    services: Services = client.app_state["services"]
    now = [0.0]
    counts = ExecutionCounts(ttl_s=60, clock=lambda: now[0])

    async def read() -> dict[str, int]:
        async with services.sessionmaker() as session:
            return await counts.read(session)

    statements: list[str] = []
    from pasar_core.storage.db import engine_of
    from sqlalchemy import event

    engine = engine_of(services.sessionmaker).sync_engine

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "count(" in statement.lower() and "executions" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert client.portal is not None
        run_one(client, headers)
        first = client.portal.call(read)
        assert first.get("succeeded") == 1
        assert len(statements) == 2  # the active statuses, then the finished ones
        run_one(client, headers)
        cached = client.portal.call(read)
        assert cached.get("succeeded") == 1  # within the TTL: the finished counts are kept
        assert len(statements) == 3  # only the active statuses were counted again
        assert all("WHERE" in statement for statement in statements)  # never the whole table
        now[0] = 60.0
        assert client.portal.call(read).get("succeeded") == 2
        assert len(statements) == 5
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def wait_for_listener(
    port: int, worker: Any
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    deadline = time.monotonic() + 60
    while True:
        try:
            return scrape(port)
        except httpx.ConnectError:
            assert worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "no metrics listener"
            time.sleep(0.2)


def test_a_worker_serves_its_counters_on_its_metrics_port(
    rq_client: TestClient, start_worker: Callable[..., Any]
) -> None:
    port = free_port()
    worker = start_worker("--metrics-port", str(port))
    before = wait_for_listener(port, worker)
    succeeded = ("pasar_runs_finished_total", (("status", "succeeded"),))
    assert before.get(succeeded, 0) == 0
    headers = login(rq_client)
    execution_id = start_run(rq_client, headers, scripted_agent(rq_client, headers))
    run = wait_for(rq_client, headers, execution_id, lambda r: r["status"] == "succeeded", 60)
    assert run["status"] == "succeeded", run
    found = scrape(port)
    assert found[succeeded] == 1  # counted by the worker that ran it, not by the API process
    calls = {labels: value for (name, labels), value in found.items()
             if name == "pasar_tool_calls_total"}  # fmt: skip
    assert calls == {(("outcome", "success"), ("tool", "txt:write")): 1}, calls
