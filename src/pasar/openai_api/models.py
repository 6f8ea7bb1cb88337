"""What an OpenAI client sends to `POST /v1/chat/completions`, checked, and the run it asks for.

Only the last message is run (it must be the user's): an agent has its own system prompt, and
its memory is its thread (`thread_id`, an extra body field), not the history a client resends.
Parameters that tune a model (temperature, max_tokens, ...) are accepted and ignored: the
agent's config chooses its model. What pasar cannot honour (n other than 1, client-side tools,
audio or image content, a response format other than text) is refused with a 400 naming the
field; what asks for the default (`"stream": null`, `"n": 1.0`, `response_format: {"type":
"text"}`) is accepted.
"""

from __future__ import annotations

from typing import Any, Literal

from pasar_core.errors import BadRequest
from pasar_core.executions.requests import MAX_INPUT_CHARS
from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
REFUSED = {
    "tools": "the agent's own tools are used; client-side tools are not supported",
    "functions": "the agent's own tools are used; client-side functions are not supported",
    "audio": "audio output is not supported",
    "response_format": "response_format is not supported; the agent answers in text",
}
DEFAULTS: dict[str, object] = {"response_format": {"type": "text"}}
"""Values of refused fields that ask for what pasar does anyway."""


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Role
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        if any(part.type != "text" or part.text is None for part in parts):
            raise BadRequest("only text content parts are supported", details={"param": "messages"})
        return "".join(part.text or "" for part in parts)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The fields pasar reads; the rest of OpenAI's request is accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=300)
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: Any = None
    """Must be 1 (any JSON number equal to 1) or absent: checked in `checked_input`."""
    thread_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The conversation to continue (the agent's config.memory must be 'thread'); "
        "send it as an extra body field (openai SDK: extra_body={'thread_id': ...}).",
    )
    user: str | None = Field(default=None, max_length=300)

    def checked_input(self) -> str:
        """The run's input: the last message's text, after refusing what pasar cannot do."""
        extra = self.model_extra or {}
        for name, reason in REFUSED.items():
            if extra.get(name) not in (None, [], {}, DEFAULTS.get(name)):
                raise BadRequest(reason, details={"param": name})
        if self.n is not None and (isinstance(self.n, bool) or self.n != 1):
            raise BadRequest("only n=1 is supported", details={"param": "n"})
        last = self.messages[-1]
        if last.role != "user":
            raise BadRequest(
                f"the last message must be the user's (it is {last.role!r})",
                details={"param": "messages"},
            )
        text = last.text()
        if not text.strip():
            raise BadRequest("the last message is empty", details={"param": "messages"})
        if len(text) > MAX_INPUT_CHARS:
            raise BadRequest(
                f"the last message is longer than {MAX_INPUT_CHARS} characters",
                details={"param": "messages"},
            )
        return text


def completion(
    completion_id: str, created: int, model: str, content: str, pasar: dict[str, Any]
) -> dict[str, Any]:
    """A `chat.completion` object (OpenAI's shape; `pasar` carries the execution's ids)."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "pasar": pasar,
    }


def chunk(
    completion_id: str,
    created: int,
    model: str,
    delta: dict[str, Any],
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """One `chat.completion.chunk` of a stream."""
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }
