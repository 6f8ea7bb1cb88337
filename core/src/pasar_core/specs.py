"""The frozen data a plugin hands to pasar: tool families, tools and LLM providers."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

TOOL_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$")
FAMILY_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class Effect(StrEnum):
    """How much a tool can change the world; drives the approval policy."""

    READ = "read"
    WRITE = "write"
    SEND = "send"
    DESTRUCTIVE = "destructive"


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Everything a tool may use during one call. Tools never reach for core singletons."""

    user_id: str
    storage_root: Path
    agent_id: str | None = None
    execution_id: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)
    """`settings`: the agent's settings for this tool's family (validated against the family's
    `settings_schema`). `secrets`: the agent's decrypted secrets named in the family's
    `secrets`, and only those. `extras`: services a deployment adds (HTTP clients, object store)."""


ToolRun = Callable[[ToolContext, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool. `id` is `service:action`; LangChain sees it as `service_action`."""

    id: str
    title: str
    description: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    run: ToolRun
    effect: Effect = Effect.READ
    auth_provider: str | None = None
    scopes: frozenset[str] = frozenset()
    timeout_s: float = 30.0

    @property
    def service(self) -> str:
        return self.id.split(":", 1)[0]

    @property
    def langchain_name(self) -> str:
        return self.id.replace(":", "_")


@dataclass(frozen=True, slots=True)
class ToolFamily:
    """A group of tools published together (one plugin may publish several families)."""

    id: str
    title: str
    description: str
    tools: tuple[ToolSpec, ...]
    version: str = "0"
    settings_schema: Mapping[str, Any] | None = None
    secrets: tuple[str, ...] = ()
    """`settings_schema`: JSON Schema of the per-agent settings of this family
    (`config.tool_settings[<family id>]`). `secrets`: names of per-agent secrets its tools read."""


@dataclass(frozen=True, slots=True)
class LLMProviderSpec:
    """A chat-model provider addressed as `provider:model`; `factory(model, options)` builds it."""

    id: str
    title: str
    factory: Callable[[str, Mapping[str, Any]], Any]
    models: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
