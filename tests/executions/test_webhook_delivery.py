"""Webhook delivery against a local receiver that misbehaves on purpose: a dropped connection is
retried, a 4xx refusal is not (the next events still go), a 429 is; and what `verify()` refuses."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from pasar_core.executions.webhooks import sign, verify
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app

SCRIPT = [
    {"tool_calls": [{"name": "txt_write", "args": {"path": "w.txt", "content": "x"}}]},
    {"content": "done"},
]

Behaviour = Callable[[int, int], int | None]
"""(event seq, attempt from 1) -> the HTTP status to answer, or None to drop the connection."""


@dataclass
class Receiver:
    """A raw HTTP/1.1 receiver on 127.0.0.1: each POST's delivery id and what it got back."""

    behaviour: Behaviour
    port: int = 0
    attempts: list[tuple[int, int | None]] = field(default_factory=list)
    finished: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def handle(self, connection: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        headers = dict(
            line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line
        )
        length = int({k.lower(): v for k, v in headers.items()}.get("content-length", "0"))
        while len(body) < length:
            body += connection.recv(65536)
        event = json.loads(body)
        seq = int(event["seq"])
        with self.lock:
            attempt = 1 + sum(1 for s, _ in self.attempts if s == seq)
            status = self.behaviour(seq, attempt)
            self.attempts.append((seq, status))
        if status is None:
            # Drop it: an abortive close (RST), so the sender sees a network error.
            connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            return
        connection.sendall(
            f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        if event["type"] == "status" and event["data"].get("status") == "succeeded":
            self.finished.set()

    def tries(self, seq: int) -> list[int | None]:
        with self.lock:
            return [status for s, status in self.attempts if s == seq]


@contextlib.contextmanager
def receiving(behaviour: Behaviour) -> Iterator[Receiver]:
    receiver = Receiver(behaviour)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            receiver.handle(self.request)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def webhook_client(pasar_settings: Settings) -> Iterator[TestClient]:
    settings = pasar_settings.with_overrides(webhook_allow_hosts=("127.0.0.1",))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def run_with_webhook(client: TestClient, url: str) -> dict[str, str]:
    credentials = {"email": "hooks@example.com", "password": TEST_PASSWORD}
    client.post("/auth/signup", json=credentials)
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    config = {"model": "scripted", "model_options": {"script": SCRIPT}}
    agent = client.post("/agents", json={"name": "h", "tools": ["txt:write"], "config": config},
                        headers=headers).json()  # fmt: skip
    run = client.post(f"/agents/{agent['agent_id']}/execute",
                      json={"input": "go", "parameters": {"webhook_url": url}}, headers=headers)  # fmt: skip
    assert run.json()["status"] == "succeeded", run.text
    return headers


def test_a_dropped_connection_is_retried(
    webhook_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    # The first delivery of event 1 is cut off mid-request; every other attempt succeeds.
    with (
        caplog.at_level(logging.INFO, logger="pasar.webhooks"),
        receiving(lambda seq, attempt: None if (seq, attempt) == (1, 1) else 204) as receiver,
    ):
        run_with_webhook(webhook_client, receiver.url)
        assert receiver.finished.wait(30), receiver.attempts
    assert receiver.tries(1) == [None, 204]
    delivered = [seq for seq, status in receiver.attempts if status == 204]
    assert delivered == list(range(1, len(delivered) + 1))  # all of them, in order, once each
    retries = [r.getMessage() for r in caplog.records if r.name == "pasar.webhooks"]
    assert retries == ["webhook delivery failed (TOOL_ERROR), retrying"]


def test_a_4xx_refusal_is_not_retried_but_429_is(webhook_client: TestClient) -> None:
    def behaviour(seq: int, attempt: int) -> int:
        if seq == 2:
            return 410  # gone: refused for good
        if seq == 3 and attempt == 1:
            return 429  # too many requests: try again later
        return 204

    with receiving(behaviour) as receiver:
        run_with_webhook(webhook_client, receiver.url)
        assert receiver.finished.wait(30), receiver.attempts
    assert receiver.tries(2) == [410]
    assert receiver.tries(3) == [429, 204]
    seqs = sorted({seq for seq, _ in receiver.attempts})
    assert seqs == list(range(1, len(seqs) + 1))  # the events after the refused one still went
    assert all(receiver.tries(seq) == [204] for seq in seqs if seq not in (2, 3))


def test_verify_refuses_malformed_expired_and_forged_signatures() -> None:
    secret, body = "whsec_test", b'{"seq": 1}'
    now = int(time.time())
    good = sign(secret, body, now)
    assert verify(secret, body, good)
    mac = good.split("v1=", 1)[1]
    for header in (
        "", "garbage", "t=,v1=" + mac, f"t=abc,v1={mac}", f"v1={mac}", f"t={now}",
        f"t={now},v1=", f"t={now},v1={'0' * 64}", good.upper(), good + ",v1=extra",
        f"t={now}.5,v1={mac}",
    ):  # fmt: skip
        assert not verify(secret, body, header), header
    assert not verify(secret, body + b" ", good)  # the body changed
    assert not verify(secret + "x", body, good)  # another secret
    expired = sign(secret, body, now - 301)
    early = sign(secret, body, now + 301)
    assert not verify(secret, body, expired)
    assert not verify(secret, body, early)
    assert verify(secret, body, expired, tolerance_s=600)  # the tolerance is the receiver's
