"""A small OpenAI-compatible chat completions server (streaming and tool calls), so tests run a
real provider path (langchain-openai over HTTP) offline.

Behaviour, decided by the request alone (no state): model `broken` answers 500; when the last
message is the user's and tools are offered, it calls the first tool with `{"path": "stub.txt",
"content": "from the stub"}` if that tool is `txt_write`; after a tool result it answers
`stub done: <tool content>`. `/v1/embeddings` answers each input with 8 numbers counted off its
words (model `broken`: 500), so similar texts get similar vectors.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.servers import CloseConnections


def _reply(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("messages", [])
    last = messages[-1] if messages else {}
    tools = [tool["function"]["name"] for tool in body.get("tools", [])]
    if last.get("role") == "user" and "txt_write" in tools:
        args = json.dumps({"path": "stub.txt", "content": "from the stub"})
        call = {"id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
                "function": {"name": "txt_write", "arguments": args}}  # fmt: skip
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    content = last.get("content") if last.get("role") == "tool" else "hello from the stub"
    return {"role": "assistant", "content": f"stub done: {content}"}


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> str:
    payload = {
        "id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": int(time.time()),
        "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }  # fmt: skip
    return f"data: {json.dumps(payload)}\n\n"


async def completions(request: Request) -> Response:
    body = await request.json()
    request.app.state.requests.append(body)
    model = body.get("model", "stub")
    if model == "broken":
        return JSONResponse({"error": {"message": "model overloaded", "type": "server_error"}}, 500)
    reply = _reply(body)
    finish = "tool_calls" if reply.get("tool_calls") else "stop"
    if not body.get("stream"):
        return JSONResponse({
            "id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": reply, "finish_reason": finish}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })  # fmt: skip

    def stream() -> Any:
        yield _chunk(model, {"role": "assistant", "content": ""})
        if reply.get("tool_calls"):
            call = reply["tool_calls"][0]
            yield _chunk(model, {"tool_calls": [{"index": 0, **call}]})
        else:
            for word in reply["content"].split(" "):
                yield _chunk(model, {"content": word + " "})
        yield _chunk(model, {}, finish)
        yield "data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


STUB_EMBEDDING_DIMENSIONS = 8


def _stub_vector(text: str) -> list[float]:
    vector = [0.01] * STUB_EMBEDDING_DIMENSIONS
    for word in text.lower().split():
        vector[sum(word.encode()) % STUB_EMBEDDING_DIMENSIONS] += 1.0
    return vector


async def embeddings(request: Request) -> Response:
    body = await request.json()
    request.app.state.requests.append(body)
    if body.get("model") == "broken":
        return JSONResponse({"error": {"message": "model overloaded", "type": "server_error"}}, 500)
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = [{"object": "embedding", "index": i, "embedding": _stub_vector(text)}
            for i, text in enumerate(inputs)]  # fmt: skip
    return JSONResponse({"object": "list", "data": data, "model": body["model"],
                         "usage": {"prompt_tokens": 1, "total_tokens": 1}})  # fmt: skip


def build_stub() -> Starlette:
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
        ],
        middleware=[Middleware(CloseConnections)],
    )
    app.state.requests = []
    return app
