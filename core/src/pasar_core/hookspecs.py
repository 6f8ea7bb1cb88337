"""The plugin contract: hooks in the entry-point group `pasar`.

Hooks return frozen data from `pasar_core.specs` and do no I/O at registration. The contract grows
only by adding arguments; impls take just the arguments they name.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from pasar_core.specs import AuthProviderSpec, LLMProviderSpec, ToolFamily

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


@hookspec
def register_auth_providers() -> Iterable[AuthProviderSpec]:  # type: ignore[empty-body]
    """OAuth 2.0 providers that tools name as `auth_provider`: endpoints, scopes with their
    hierarchy and risk class, and extra authorize parameters.

    Pure data, like tool families. Provider ids must be unique across all plugins
    (`DuplicateRegistration`); a tool naming a registered provider may only declare scopes the
    provider lists. Client ids and secrets never come from a plugin: they are server settings
    (`PASAR_<PROVIDER>_CLIENT_ID`, `PASAR_<PROVIDER>_CLIENT_SECRET`).
    """
