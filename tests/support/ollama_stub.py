"""A small Ollama `/api/chat` server (NDJSON streaming and tool calls), so tests run the
`ollama:` provider path (langchain-ollama over HTTP) offline.

Behaviour, decided by the request alone (no state): when the last message is the user's and
`txt_write` is offered, it calls it with `{"path": "stub.txt", "content": "from the ollama
stub"}`; after a tool result it answers `stub done: <tool content>`; otherwise `hello from the
ollama stub`. Every request body is kept in `app.state.requests`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.servers import CloseConnections

CREATED_AT = "2025-03-03T09:00:00.000000Z"
COUNTS = {"total_duration": 1, "load_duration": 1, "prompt_eval_count": 1,
          "prompt_eval_duration": 1, "eval_count": 1, "eval_duration": 1}  # fmt: skip


def _reply(body: dict[str, Any]) -> dict[str, Any]:
    last = (body.get("messages") or [{}])[-1]
    tools = [tool.get("function", {}).get("name") for tool in body.get("tools") or []]
    if last.get("role") == "tool":
        return {"role": "assistant", "content": f"stub done: {last.get('content', '')}"}
    if last.get("role") == "user" and "txt_write" in tools:
        args = {"path": "stub.txt", "content": "from the ollama stub"}
        call = {"function": {"name": "txt_write", "arguments": args}}
        return {"role": "assistant", "content": "", "tool_calls": [call]}
    return {"role": "assistant", "content": "hello from the ollama stub"}


def _line(model: str, message: dict[str, Any], done: bool) -> str:
    record: dict[str, Any] = {"model": model, "created_at": CREATED_AT, "message": message,
                              "done": done}  # fmt: skip
    if done:
        record |= {"done_reason": "stop", **COUNTS}
    return json.dumps(record) + "\n"


def _stream(model: str, reply: dict[str, Any]) -> Iterator[str]:
    if reply.get("tool_calls"):
        yield _line(model, reply, False)
    else:
        for word in reply["content"].split(" "):
            yield _line(model, {"role": "assistant", "content": word + " "}, False)
    yield _line(model, {"role": "assistant", "content": ""}, True)


async def chat(request: Request) -> Response:
    body = await request.json()
    request.app.state.requests.append(body)
    model = body.get("model", "stub")
    reply = _reply(body)
    if body.get("stream", True):
        return StreamingResponse(_stream(model, reply), media_type="application/x-ndjson")
    return JSONResponse(json.loads(_line(model, reply, True)))


def build_stub() -> Starlette:
    app = Starlette(
        routes=[Route("/api/chat", chat, methods=["POST"])],
        middleware=[Middleware(CloseConnections)],
    )
    app.state.requests = []
    return app
