"""Steps stream while they happen: SSE (resumable), GraphQL subscriptions and signed webhooks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pasar_core.executions.webhooks import verify
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.support.servers import serve_in_thread

SCRIPT = [
    {"tool_calls": [{"name": "txt_write", "args": {"path": "e.txt", "content": "x"}}]},
    {"content": "all done now"},
]
STEP_ORDER = ["model_call", "tool_call", "tool_result", "model_call"]


def agent(client: TestClient, headers: dict[str, str], delay_ms: int = 0) -> str:
    config = {"model": "scripted", "model_options": {"script": SCRIPT, "delay_ms": delay_ms}}
    body = {"name": "events", "tools": ["txt:write"], "config": config}
    return str(client.post("/agents", json=body, headers=headers).json()["agent_id"])


def sse_events(client: TestClient, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if "event" in current:
                    events.append(current)
                current = {}
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
    return events


def test_sse_streams_every_step_in_order_and_resumes(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = agent(client, headers, delay_ms=100)
    run = client.post(f"/agents/{agent_id}/execute", json={"input": "go", "parameters": {"wait": False}},
                      headers=headers).json()  # fmt: skip
    url = f"/executions/{run['execution_id']}/events"
    events = sse_events(client, url, headers)
    stored = [event for event in events if "id" in event]
    assert [event["id"] for event in stored] == list(range(1, len(stored) + 1))
    assert [e["event"] for e in stored if e["event"] != "status"] == STEP_ORDER
    assert stored[-1]["event"] == "status"
    assert stored[-1]["data"]["status"] == "succeeded"
    tokens = "".join(e["data"]["text"] for e in events if e["event"] == "token")
    assert tokens == "all done now"
    resumed = sse_events(client, url, headers | {"Last-Event-ID": str(stored[2]["id"])})
    assert [event["id"] for event in resumed] == [event["id"] for event in stored[3:]]
    bad = client.get(url, headers=headers | {"Last-Event-ID": "abc"})
    assert bad.status_code == 400


def test_graphql_subscription_receives_every_step(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = agent(client, headers, delay_ms=100)
    mutation = {"query": "mutation($a: ID!) { executeAgent(agentId: $a, input: \"go\", parameters: {wait: false}) { id status } }",
                "variables": {"a": agent_id}}  # fmt: skip
    started = client.post("/graphql", json=mutation, headers=headers).json()["data"]["executeAgent"]
    assert started["status"] in ("queued", "running")
    received: list[dict[str, Any]] = []
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json(
            {"type": "connection_init", "payload": {"Authorization": headers["Authorization"]}}
        )
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!) { executionEvents(id: $id) { seq type data } }",
            "variables": {"id": started["id"]}}})  # fmt: skip
        while True:
            message = ws.receive_json()
            if message["type"] == "complete":
                break
            assert message["type"] == "next", message
            received.append(message["payload"]["data"]["executionEvents"])
    stored = [event for event in received if event["seq"] is not None]
    assert [event["seq"] for event in stored] == list(range(1, len(stored) + 1))
    assert [e["type"] for e in stored if e["type"] != "status"] == STEP_ORDER
    assert stored[-1]["data"]["status"] == "succeeded"


def test_subscription_needs_authentication(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = agent(client, headers)
    run = client.post(f"/agents/{agent_id}/execute", json={"input": "go"}, headers=headers).json()
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": {}})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!) { executionEvents(id: $id) { seq } }",
            "variables": {"id": run["execution_id"]}}})  # fmt: skip
        message = ws.receive_json()
        # The field's policy check refuses it before the subscription starts: an `error`
        # message (graphql-transport-ws) carrying the typed error.
        assert message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    failures = {"left": 1}
    done = threading.Event()

    async def hook(request: Request) -> Response:
        body = await request.body()
        if failures["left"]:
            failures["left"] -= 1
            return Response(status_code=503)  # the first delivery is retried
        received.append((dict(request.headers), body))
        if json.loads(body)["data"].get("status") == "succeeded":
            done.set()
        return Response(status_code=204)

    with serve_in_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as base:
        yield f"{base}/hook", received
        done.wait(10)


@pytest.fixture
def webhook_client(pasar_settings: Settings) -> Iterator[TestClient]:
    """An app whose operator allow-listed 127.0.0.1 for webhooks (the local receiver)."""
    settings = pasar_settings.with_overrides(webhook_allow_hosts=("127.0.0.1",))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def login(client: TestClient, email: str) -> dict[str, str]:
    credentials = {"email": email, "password": TEST_PASSWORD}
    client.post("/auth/signup", json=credentials)
    return {
        "Authorization": "Bearer "
        + client.post("/auth/token", json=credentials).json()["access_token"]
    }


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/x",
     "http://[::1]/x", "http://2130706433/x", "http://user:pw@example.com/x"],
)  # fmt: skip
def test_webhooks_to_internal_addresses_are_refused(
    client: TestClient, make_user, url: str
) -> None:
    headers = make_user()
    agent_id = agent(client, headers)
    response = client.post(f"/agents/{agent_id}/execute",
                           json={"input": "go", "parameters": {"webhook_url": url}}, headers=headers)  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["errors"][0]["path"] == "/parameters/webhook_url"
    assert client.get(f"/agents/{agent_id}/executions", headers=headers).json()["executions"] == []


def test_webhook_deliveries_are_signed_ordered_and_retried(
    webhook_client: TestClient, receiver
) -> None:
    client = webhook_client
    url, received = receiver
    headers = login(client, "webhooks@example.com")
    agent_id = agent(client, headers)
    run = client.post(f"/agents/{agent_id}/execute",
                      json={"input": "go", "parameters": {"webhook_url": url}}, headers=headers).json()  # fmt: skip
    assert run["status"] == "succeeded"
    secret = client.get("/webhook-secret", headers=headers).json()["secret"]
    import time

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any(
        json.loads(body)["data"].get("status") == "succeeded" for _, body in received
    ):
        time.sleep(0.05)
    bodies = [json.loads(body) for _, body in received]
    assert [body["seq"] for body in bodies] == list(range(1, len(bodies) + 1))
    assert [b["type"] for b in bodies if b["type"] != "status"] == STEP_ORDER
    assert bodies[-1]["data"]["status"] == "succeeded"
    for request_headers, body in received:
        assert verify(secret, body, request_headers["x-pasar-signature"])
        assert not verify(secret + "x", body, request_headers["x-pasar-signature"])
        assert request_headers["x-pasar-event"] == json.loads(body)["type"]
