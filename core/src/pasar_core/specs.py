"""The frozen data a plugin hands to pasar: tool families, tools, LLM and embedding providers,
reasoning strategies."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pasar_core.objects import ObjectStore

TOOL_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$")
FAMILY_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class Effect(StrEnum):
    """How much a tool can change the world; drives the approval policy."""

    READ = "read"
    WRITE = "write"
    SEND = "send"
    DESTRUCTIVE = "destructive"


class ScopeRisk(StrEnum):
    """Google's classification of an OAuth scope (other providers map onto the same three)."""

    NON_SENSITIVE = "non_sensitive"
    SENSITIVE = "sensitive"
    RESTRICTED = "restricted"


@dataclass(frozen=True, slots=True)
class OAuthCredentials:
    """The OAuth access a tool call gets: a fresh access token of the user's grant.

    `scopes` are the scopes the calling agent may use for this tool (never the whole grant).
    `api_base_url` replaces the origin of the provider's API URLs (an emulator); None means the
    provider's real hosts."""

    provider: str
    access_token: str
    scopes: frozenset[str] = frozenset()
    api_base_url: str | None = None

    def __repr__(self) -> str:  # never print the token
        return f"OAuthCredentials(provider={self.provider!r}, scopes={sorted(self.scopes)!r})"


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
    oauth: OAuthCredentials | None = None
    objects: ObjectStore | None = None
    """`settings`: the agent's settings for this tool's family (validated against the family's
    `settings_schema`). `secrets`: the agent's decrypted secrets named in the family's
    `secrets`, and only those. `extras`: services a deployment adds (HTTP clients, object store).
    `oauth`: for a tool with an `auth_provider`, the credentials the core checked for this agent
    and tool (see `pasar_core.oauth.enforcement.credentials_for_tool`). `objects`: the per-user
    object store (`pasar_core.objects`); None means a local store over `storage_root`."""


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
        """A valid function name for model APIs: `:` becomes `_`, a custom tool's pinned
        version `@3` becomes `_v3` (`acme:invoice_total@3` -> `acme_invoice_total_v3`)."""
        return self.id.replace(":", "_").replace("@", "_v")


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
    """A chat-model provider addressed as `provider:model`.

    `factory(model, options, env)` returns a LangChain chat model: `options` are the agent's
    `model_options`, `env` the server's environment (API keys and base URLs come only from
    there, never from an agent). Raise `ProviderUnavailable` naming what to install or set."""

    id: str
    title: str
    factory: Callable[[str, Mapping[str, Any], Mapping[str, str]], Any]
    models: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    options_schema: Mapping[str, Any] | None = None
    """JSON Schema the agent's `model_options` must fit (checked when the agent is saved)."""


@dataclass(frozen=True, slots=True)
class EmbeddingProviderSpec:
    """An embedding-model provider addressed as `provider:model` (`local:all-minilm-l6-v2`).

    `factory(model, env)` returns an `Embedder` (`pasar_core.memory.embedder`): its `dimensions`
    belong to the model, and `embed(texts)` returns one vector per text. It is called once per
    process and model, and must not load weights or connect yet (do that on the first `embed`).
    `env` is the server's environment (keys and base URLs come only from there). Raise
    `ProviderUnavailable` naming what to install or set."""

    id: str
    title: str
    factory: Callable[[str, Mapping[str, str]], Any]
    models: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()


STRATEGY_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,49}$")


@dataclass(frozen=True, slots=True)
class StrategyParts:
    """What the agent builder prepared for one agent config: a strategy composes its graph
    from these and nothing else.

    `tools`: the agent's own tools (LangChain tools; the core validates, records and approves
    their calls). `middleware`: the run's middleware (limits, step recording, fallbacks, the
    approval gate, memory): every model call and tool call of the graph must pass through it.
    """

    model: Any  # langchain_core BaseChatModel
    tools: tuple[Any, ...]  # langchain_core BaseTool
    system_prompt: str | None
    middleware: tuple[Any, ...]  # langchain AgentMiddleware
    model_ref: str = ""


@dataclass(frozen=True, slots=True)
class StrategySpec:
    """A reasoning strategy an agent names as `config.strategy` (`react`, `plan_execute`).

    `build(parts)` returns a compiled LangGraph graph taking and returning `{"messages": [...]}`;
    it is called once per agent config and process and the graph is shared between runs (so no
    run state in closures: per-run recording goes through `pasar_core.strategies.plans`).
    `internal_tools`: names of tools the strategy adds itself (as `write_todos`): pure updates of
    the run's own state with no effect outside it, no scopes and no approval. An agent declaring
    a tool of the same name is refused when its graph is built. Record plans with
    `pasar_core.strategies.plans.record_plan`."""

    id: str
    title: str
    description: str
    build: Callable[[StrategyParts], Any]
    internal_tools: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ScopeSpec:
    """One OAuth scope of a provider: its risk class and the scopes it covers (directly)."""

    id: str
    risk: ScopeRisk
    description: str = ""
    covers: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AuthProviderSpec:
    """An OAuth 2.0 provider tools can name as `auth_provider`.

    URLs are the production ones; a deployment may re-point their origins (settings), so an
    emulator needs no code change. `authorize_params` are sent on every consent link (for
    Google `access_type=offline`, `include_granted_scopes=true`). `scopes` lists every scope a
    tool may declare, with its hierarchy: a scope covers the ones in its `covers` (transitively).

    `identity_scopes` are asked on every consent so the provider names the account that
    consented (OpenID Connect: `openid email`); its ID token is read when its `iss` is one of
    `id_token_issuers` and its `aud` this server's client id."""

    id: str
    title: str
    authorize_url: str
    token_url: str
    scopes: tuple[ScopeSpec, ...]
    revoke_url: str | None = None
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    scope_separator: str = " "
    identity_scopes: tuple[str, ...] = ()
    id_token_issuers: tuple[str, ...] = ()
    narrows_on_refresh: bool = False
    """The provider mints an access token for a subset of a grant's scopes on refresh (`scope`
    on the refresh_token grant, RFC 6749 section 6; Google does): each agent's tool calls then
    get a token for that agent's scopes alone (`pasar_core.oauth.narrowing`)."""
