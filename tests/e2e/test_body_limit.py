"""One body limit for every route: a 60 MB body is refused with 413 while it streams in, and
the app never reads it past the limit (the request's chunks are counted as the app pulls them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pasar_core.settings import Settings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message
from starlette.websockets import WebSocketDisconnect

from pasar.app import create_app
from pasar.body_limit import WS_MESSAGE_TOO_BIG, BodyLimit, set_body_limit

CHUNK = b"a" * 65_536
ATTACK_BYTES = 60 * 1024 * 1024
ATTACK_CHUNKS = ATTACK_BYTES // len(CHUNK)
LIMIT = 1_048_576  # the default PASAR_MAX_BODY_BYTES
HEAD = b'{"query": "'
PULLS_PAST_LIMIT = (LIMIT - len(HEAD)) // len(CHUNK) + 1  # the chunk that crosses the limit


class CountedBody:
    """A 60 MB JSON-looking body handed to the app one chunk per `receive`, counting pulls."""

    def __init__(self, chunks: int = ATTACK_CHUNKS) -> None:
        self.chunks = chunks
        self.pulled = 0

    async def receive(self) -> Message:
        if self.pulled >= self.chunks:
            return {"type": "http.disconnect"}
        self.pulled += 1
        head = HEAD if self.pulled == 1 else b""
        return {
            "type": "http.request",
            "body": head + CHUNK,
            "more_body": self.pulled < self.chunks,
        }


def call(
    client: TestClient, path: str, body: CountedBody, *, declare_length: bool, **headers: str
) -> tuple[int, dict[str, str], Any]:
    """POST `body` to the running app straight through ASGI (TestClient would buffer it)."""
    raw_headers = [(b"content-type", b"application/json")]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if declare_length:
        raw_headers.append((b"content-length", str(ATTACK_BYTES + 11).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": client.app_state.copy(),
    }
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> None:
        await client.app(scope, body.receive, send)

    assert client.portal is not None
    client.portal.call(run)
    start = next(m for m in sent if m["type"] == "http.response.start")
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], response_headers, json.loads(payload)


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
def test_a_60_mb_graphql_body_is_refused_before_it_is_read(
    client: TestClient, declare_length: bool
) -> None:
    body = CountedBody()
    status, headers, payload = call(client, "/graphql", body, declare_length=declare_length)
    assert status == 413
    assert payload["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert payload["errors"][0]["extensions"]["max_bytes"] == LIMIT
    assert headers["connection"] == "close"
    # Declared too large: not one chunk read. Chunked: read up to the limit, then no more.
    assert body.pulled == (0 if declare_length else PULLS_PAST_LIMIT)


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
def test_a_60_mb_rest_body_is_refused_before_it_is_read(
    client: TestClient, declare_length: bool
) -> None:
    body = CountedBody()
    status, headers, payload = call(client, "/auth/signup", body, declare_length=declare_length)
    assert status == 413
    assert payload["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert headers["connection"] == "close"
    assert body.pulled == (0 if declare_length else PULLS_PAST_LIMIT)


def test_a_route_that_needs_a_caller_never_reads_an_anonymous_body(client: TestClient) -> None:
    body = CountedBody()
    status, headers, payload = call(client, "/agents", body, declare_length=True)
    assert (status, payload["error"]["code"]) == (401, "UNAUTHENTICATED")
    assert body.pulled == 0
    assert headers["connection"] == "close"  # the declared body will never be read


def test_bodies_within_the_limit_pass(client: TestClient, make_user) -> None:
    body = {"name": "x" * 900_000, "tools": ["txt:read"]}
    response = client.post("/agents", json=body, headers=make_user())
    assert response.status_code == 422  # too long a name: the body was read and validated
    assert response.json()["error"]["code"] == "VALIDATION_FAILED"
    assert "connection" not in {key.lower() for key in response.headers}


def test_the_limit_is_the_setting(pasar_settings: Settings) -> None:
    settings = pasar_settings.with_overrides(max_body_bytes=100)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        small = {"query": "{ tools { id } }"}
        assert client.post("/graphql", json=small).status_code == 200
        large = {"query": "{ tools { id } }", "variables": {"pad": "x" * 100}}
        response = client.post("/graphql", json=large)
        assert response.status_code == 413
        assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


def test_websocket_messages_over_the_limit_close_the_socket(client: TestClient) -> None:
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket:
        socket.send_text(json.dumps({"type": "connection_init", "payload": {"x": "a" * LIMIT}}))
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
    assert closed.value.code == WS_MESSAGE_TOO_BIG


def small_app(limit: int) -> Starlette:
    """A bare app: one route raises its own limit, one has no error mapping for the 413."""

    async def upload(request: Request) -> Response:
        set_body_limit(request.scope, 10 * limit)
        return JSONResponse({"bytes": len(await request.body())})

    async def plain(request: Request) -> Response:
        return JSONResponse({"bytes": len(await request.body())})

    return Starlette(
        routes=[
            Route("/upload", upload, methods=["POST"]),
            Route("/plain", plain, methods=["POST"]),
        ],
        middleware=[Middleware(BodyLimit, max_bytes=limit)],
    )


def chunks(count: int, size: int) -> Iterator[bytes]:
    for _ in range(count):
        yield b"x" * size


def test_a_route_can_raise_its_own_limit() -> None:
    with TestClient(small_app(1000)) as client:
        assert client.post("/upload", content=b"x" * 5000).json() == {"bytes": 5000}
        assert client.post("/upload", content=chunks(5, 1000)).json() == {"bytes": 5000}
        too_big = client.post("/upload", content=b"x" * 10_001)
        assert too_big.status_code == 413
        # Without a handler for the refusal, the middleware answers it itself.
        plain = client.post("/plain", content=chunks(3, 1000))
        assert plain.status_code == 413
        assert plain.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
        assert client.post("/plain", content=b"x" * 1000).json() == {"bytes": 1000}


@pytest.mark.anyio
async def test_past_the_limit_after_the_response_started_is_a_disconnect() -> None:
    seen: list[Message] = []

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while (message := await receive())["type"] == "http.request":
            seen.append(message)
        seen.append(message)
        await send({"type": "http.response.body", "body": b""})

    body = CountedBody(chunks=10)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    await BodyLimit(streaming, max_bytes=2 * len(CHUNK) + len(HEAD))(scope, body.receive, send)
    assert [m["type"] for m in seen] == ["http.request", "http.request", "http.disconnect"]
    assert body.pulled == 3
    assert sent[0]["status"] == 200
