"""The plugin contract: hooks in the entry-point group `pasar`.

Hooks return frozen data from `pasar_core.specs` and do no I/O at registration. The contract grows
only by adding arguments; impls take just the arguments they name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING

import pluggy

from pasar_core.specs import (
    AuthProviderSpec,
    EmbeddingProviderSpec,
    LLMProviderSpec,
    StrategySpec,
    ToolFamily,
)

if TYPE_CHECKING:
    import click

    from pasar_core.services import Services

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
def register_embedding_providers() -> Iterable[EmbeddingProviderSpec]:  # type: ignore[empty-body]
    """Embedding-model providers: an id (the `provider` in `provider:model`, as an agent's
    `knowledge.embedding_model` names it) and an embedder factory.

    Pure data, like LLM providers; provider ids must be unique (`DuplicateRegistration`). The
    embedder's `dimensions` are the model's: vectors of each dimension are kept apart.
    """


@hookspec
def register_strategies() -> Iterable[StrategySpec]:  # type: ignore[empty-body]
    """Reasoning strategies: an id (what an agent's `config.strategy` names), a title and a
    description, and `build(parts)` composing the agent's graph from the model, tools, system
    prompt and middleware the core prepared.

    Pure data; strategy ids must be unique (`DuplicateRegistration`). The graph must send every
    model and tool call through `parts.middleware`, so limits, recording and approval hold
    under every strategy; tools a strategy adds itself are named in `internal_tools`.
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


@hookspec
def startup(services: Services) -> Awaitable[None] | None:
    """Once per process that serves or runs agents (the server's lifespan, `pasar worker`),
    after the registry and services are built; may return an awaitable, which is awaited.

    Make shared clients here and put them in `services.extras` under `<plugin>.<name>` keys
    (`<plugin>`: the plugin's name or one of its tool families' ids; writing any other key
    refuses start-up): tools find them in `ctx.extras`. Raising refuses start-up with `PLUGIN_STARTUP_FAILED`
    naming the plugin (the plugins already started are shut down first).
    """


@hookspec
def shutdown(services: Services) -> Awaitable[None] | None:
    """Once when that process stops, in the reverse order of `startup`; may return an
    awaitable. Close what `startup` opened. A failure is logged with the plugin's name and the
    other plugins still shut down."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the `pasar` command line: `cli` is its top-level click group (its `dev`
    group is the place for development tools). Called when a command not built in is asked
    for, or a group's help is shown, so keep imports inside the commands."""
