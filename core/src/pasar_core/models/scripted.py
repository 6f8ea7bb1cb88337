"""A deterministic chat model that plays a script, streaming like a real model.

`config.model = "scripted"` with `config.model_options = {"script": [...], "delay_ms": 0}`.
Each entry is one reply: `{"content": "text"}` or `{"tool_calls": [{"name": ..., "args": {}}]}`,
or `{"echo": true}`: the conversation the model received, one `role: text` line per message (so a
test can see what reached the model, e.g. a thread's earlier turns).
Replies play in order within a run; the last one repeats once the script is exhausted. The
position is derived from the conversation (model replies since the last user message), so the
model holds no state: concurrent runs share nothing, and a resumed run continues its script.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolCallChunk,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field

TOKEN = re.compile(r"\S+\s*|\s+")


class ScriptedToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    args: dict[str, Any] = Field(default_factory=dict)


class ScriptedReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(default="", max_length=100_000)
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list, max_length=20)
    echo: bool = Field(default=False, description="Answer with the conversation received.")


class ScriptedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    script: list[ScriptedReply] = Field(min_length=1, max_length=1000)
    delay_ms: int = Field(default=0, ge=0, le=60_000)
    fail: bool = Field(default=False, description="Raise a provider error on every call.")


class ScriptedProviderError(RuntimeError):
    """What a scripted model with `fail: true` raises, standing in for a provider outage."""


class ScriptedChatModel(BaseChatModel):
    """Plays `options.script`, one reply per model call."""

    options: ScriptedOptions

    @property
    def _llm_type(self) -> str:
        return "pasar-scripted"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self  # the script decides which tools are called

    def _next_reply(self, messages: list[BaseMessage]) -> ScriptedReply:
        if self.options.fail:
            raise ScriptedProviderError("scripted provider outage")
        position = 0
        for message in messages:
            if isinstance(message, HumanMessage):
                position = 0
            elif isinstance(message, AIMessage):
                position += 1
        script = self.options.script
        reply = script[min(position, len(script) - 1)]
        if reply.echo:
            return ScriptedReply(content=_transcript(messages), tool_calls=reply.tool_calls)
        return reply

    @staticmethod
    def _tool_calls(reply: ScriptedReply) -> list[dict[str, Any]]:
        return [
            {"name": call.name, "args": call.args, "id": f"call_{uuid.uuid4().hex[:12]}"}
            for call in reply.tool_calls
        ]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._next_reply(messages)
        message = AIMessage(content=reply.content, tool_calls=self._tool_calls(reply))
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.options.delay_ms:
            await asyncio.sleep(self.options.delay_ms / 1000)
        return self._generate(messages, stop, None, **kwargs)

    def _chunks(self, reply: ScriptedReply) -> Iterator[ChatGenerationChunk]:
        for token in TOKEN.findall(reply.content):
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))
        calls = self._tool_calls(reply)
        if calls:
            chunks = [
                ToolCallChunk(name=c["name"], args=_json(c["args"]), id=c["id"], index=i)
                for i, c in enumerate(calls)
            ]
            yield ChatGenerationChunk(
                message=AIMessageChunk(content="", tool_call_chunks=chunks, chunk_position="last")
            )
        else:
            yield ChatGenerationChunk(message=AIMessageChunk(content="", chunk_position="last"))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(self._next_reply(messages)):
            if run_manager and isinstance(chunk.message.content, str):
                run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if self.options.delay_ms:
            await asyncio.sleep(self.options.delay_ms / 1000)
        for chunk in self._chunks(self._next_reply(messages)):
            if run_manager and isinstance(chunk.message.content, str):
                await run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
            yield chunk


def _transcript(messages: list[BaseMessage]) -> str:
    return "\n".join(f"{message.type}: {message.text}" for message in messages)[:100_000]


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
