"""Requests from several client addresses through one TestClient, as a network would deliver
them: the test names the peer in `X-Test-Peer`, the wrapper puts it where a server puts the TCP
peer (`scope["client"]`) and drops the header. The app under test cannot tell the difference."""

from __future__ import annotations

from typing import Any

PEER_HEADER = b"x-test-peer"


def peers_from_header(app: Any) -> Any:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = dict(scope["headers"]).get(PEER_HEADER)
            if peer is not None:
                headers = [(k, v) for k, v in scope["headers"] if k != PEER_HEADER]
                scope = {**scope, "client": (peer.decode(), 40_000), "headers": headers}
        await app(scope, receive, send)

    return wrapped


def from_peer(address: str) -> dict[str, str]:
    return {PEER_HEADER.decode(): address}
