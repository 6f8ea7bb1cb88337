"""A small Anthropic Messages API server (streaming and tool use), so tests run the `anthropic:`
provider path (langchain-anthropic over HTTP) offline.

Behaviour, decided by the request alone (no state): when the last message is the user's text and
`txt_write` is offered, it calls it with `{"path": "stub.txt", "content": "from the anthropic
stub"}`; after a tool result it answers `stub done: <tool result>`; otherwise `hello from the
anthropic stub`. Every request body is kept in `app.state.requests`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.servers import CloseConnections


def tool_result_text(block: dict[str, Any]) -> str:
    content = block.get("content", "")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def _reply(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The content blocks of the answer."""
    last = (body.get("messages") or [{}])[-1]
    content = last.get("content")
    blocks = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
    results = [block for block in blocks if block.get("type") == "tool_result"]
    if results:
        return [{"type": "text", "text": f"stub done: {tool_result_text(results[-1])}"}]
    if "txt_write" in [tool.get("name") for tool in body.get("tools", [])]:
        args = {"path": "stub.txt", "content": "from the anthropic stub"}
        return [{"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:12]}", "name": "txt_write",
                 "input": args}]  # fmt: skip
    return [{"type": "text", "text": "hello from the anthropic stub"}]


def _sse(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"


def _stream(message: dict[str, Any]) -> Iterator[str]:
    yield _sse("message_start", {"message": {**message, "content": [], "stop_reason": None}})
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield _sse("content_block_start",
                       {"index": index, "content_block": {"type": "text", "text": ""}})  # fmt: skip
            for word in block["text"].split(" "):
                delta = {"type": "text_delta", "text": word + " "}
                yield _sse("content_block_delta", {"index": index, "delta": delta})
        else:
            start = {**block, "input": {}}
            yield _sse("content_block_start", {"index": index, "content_block": start})
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            yield _sse("content_block_delta", {"index": index, "delta": delta})
        yield _sse("content_block_stop", {"index": index})
    yield _sse("message_delta", {"delta": {"stop_reason": message["stop_reason"],
                                           "stop_sequence": None},
                                 "usage": {"output_tokens": 1}})  # fmt: skip
    yield _sse("message_stop", {})


async def messages(request: Request) -> Response:
    body = await request.json()
    request.app.state.requests.append({"headers": dict(request.headers), "body": body})
    content = _reply(body)
    message = {
        "id": f"msg_{uuid.uuid4().hex[:12]}", "type": "message", "role": "assistant",
        "model": body.get("model", "stub"), "content": content,
        "stop_reason": "tool_use" if content[0]["type"] == "tool_use" else "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1},
    }  # fmt: skip
    if body.get("stream"):
        return StreamingResponse(_stream(message), media_type="text/event-stream")
    return JSONResponse(message)


def build_stub() -> Starlette:
    app = Starlette(
        routes=[Route("/v1/messages", messages, methods=["POST"])],
        middleware=[Middleware(CloseConnections)],
    )
    app.state.requests = []
    return app
