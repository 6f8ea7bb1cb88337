"""The plugin contract: hooks in the entry-point group `pasar`.

Hooks return frozen data from `pasar_core.specs` and do no I/O at registration. The contract grows
only by adding arguments; impls take just the arguments they name.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from pasar_core.specs import LLMProviderSpec, ToolFamily

PROJECT_NAME = "pasar"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_tool_families() -> Iterable[ToolFamily]:  # type: ignore[empty-body]
    """Tool families: tools with JSON Schema input and output and the OAuth scopes each needs.

    Pure data: no I/O, no credentials, no clients. Tool ids must be unique across all plugins;
    a clash refuses start-up with `DuplicateRegistration`.
    """


@hookspec
def register_llm_providers() -> Iterable[LLMProviderSpec]:  # type: ignore[empty-body]
    """LLM providers: an id (the `provider` in `provider:model`) and a chat-model factory.

    The factory is called per run with the model name and the agent's `model_options`.
    """
