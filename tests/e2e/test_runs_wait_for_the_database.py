"""A run that meets a full database pool waits for a connection and finishes; it is not
interrupted and resumed (requests in the meantime still get their quick 503)."""

from __future__ import annotations

import http.server
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pasar_core.settings import Settings
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.runs import call, create_agent, scripted
from tests.e2e.test_hot_paths import hold_every_connection, log_in, release

TERMINAL = {"succeeded", "failed", "cancelled", "limit_exceeded"}


class GatedServer(http.server.ThreadingHTTPServer):
    """Answers GET once `answer` is set, and sets `asked` when a request arrived."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.answer = threading.Event()
        super().__init__(("127.0.0.1", 0), GatedHandler)


class GatedHandler(http.server.BaseHTTPRequestHandler):
    server: GatedServer

    def do_GET(self) -> None:
        self.server.asked.set()
        self.server.answer.wait(60)
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


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
        db_pool_size=2, db_read_pool_size=1, db_pool_timeout_s=0.2,
        allow_private_hosts=("127.0.0.1",),
    )  # fmt: skip
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_a_run_waits_for_a_connection_instead_of_being_interrupted(
    client: TestClient, gated: GatedServer, caplog: pytest.LogCaptureFixture
) -> None:
    headers = log_in(client)
    url = f"http://127.0.0.1:{gated.server_address[1]}/"
    config = scripted(
        call("http:get", url=url), tool_settings={"web": {"allow_hosts": ["127.0.0.1"]}}
    )
    agent_id = create_agent(client, headers, ["http:get"], config)
    started = client.post(
        f"/agents/{agent_id}/execute",
        json={"input": "go", "parameters": {"wait": False}},
        headers=headers,
    )
    assert started.status_code in (200, 202), started.text
    execution_id = started.json()["execution_id"]
    assert gated.asked.wait(30), "the run never called the tool"

    caplog.set_level(logging.INFO, logger="pasar.db")
    held = hold_every_connection(client)  # the run is inside its tool call: it holds none
    try:
        assert client.get(f"/agents/{agent_id}", headers=headers).status_code == 503
        gated.answer.set()  # the run goes on, and meets the full pool when it records its end
        deadline = time.monotonic() + 30
        while not any("waiting for one" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the run never waited for a connection"
            time.sleep(0.05)
    finally:
        release(client, held)

    deadline = time.monotonic() + 60
    while (run := client.get(f"/executions/{execution_id}", headers=headers)).status_code != 200 \
            or run.json()["status"] not in TERMINAL:  # fmt: skip
        assert time.monotonic() < deadline, run.text
        time.sleep(0.1)
    assert run.json()["status"] == "succeeded", run.json()
    events = client.get(f"/executions/{execution_id}/events", headers=headers)
    assert events.status_code == 200, events.text
    assert "interrupted" not in events.text  # never handed back and resumed
    result = next(step for step in run.json()["steps"] if step["type"] == "tool_result")
    assert "error" not in result, result
