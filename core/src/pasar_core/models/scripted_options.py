"""What a scripted model's `model_options` hold (pasar_core.models.scripted plays them): apart
from the model, so registering the provider and checking an agent's options load no LangChain."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
