"""The shape of an agent: validated the same way for REST, GraphQL and the CLI."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# `provider:model` (openai:gpt-4o-mini, openai-compatible:llama3) or the built-in `scripted`.
MODEL_PATTERN = r"^(scripted|[a-z][a-z0-9_-]{0,49}:[A-Za-z0-9._:/@-]{1,200})$"
STRATEGY_PATTERN = r"^[a-z][a-z0-9_]{0,49}$"
MAX_TOOLS = 64
MAX_OPTIONS_KEYS = 50


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


def _no_repeats(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("must not repeat an id")
    return value


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    if isinstance(value, list):
        return all(_finite(item) for item in value)
    return True


def _bounded_json_options(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_OPTIONS_KEYS:
        raise ValueError(f"may have at most {MAX_OPTIONS_KEYS} keys")
    if not _finite(value):
        raise ValueError("numbers must be finite (no NaN or Infinity)")
    return value


ModelRef = Annotated[str, Field(pattern=MODEL_PATTERN)]
AgentName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]
ToolIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=200)]],
    Field(max_length=MAX_TOOLS),
    AfterValidator(_no_repeats),
]


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_steps: int = Field(default=25, ge=1, le=500, description="Model calls per run.")
    max_tool_calls: int = Field(default=50, ge=0, le=1000, description="Tool calls per run.")
    timeout_s: float = Field(default=300, gt=0, le=3600, description="Wall-clock limit per run.")


EffectName = Literal["read", "write", "send", "destructive"]


def _risky_effects() -> list[EffectName]:
    return ["send", "destructive"]


class ApprovalPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    require_for: list[EffectName] = Field(
        default_factory=_risky_effects,
        description="Tool effects that wait for a human decision before they run.",
    )


EMBEDDING_MODEL_PATTERN = r"^[a-z][a-z0-9_-]{0,49}:[A-Za-z0-9._:/@-]{1,200}$"


class KnowledgeSettings(BaseModel):
    """How `memory: "vector"` recalls: the most similar chunks of the agent's knowledge and
    past exchanges go into each run's prompt."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    embedding_model: str = Field(
        default="local:all-minilm-l6-v2",
        pattern=EMBEDDING_MODEL_PATTERN,
        description="`provider:model` of a registered embedding provider.",
    )
    top_k: int = Field(default=4, ge=1, le=50, description="Most chunks recalled per run.")
    min_score: float = Field(
        default=0.3, ge=-1, le=1, description="Least cosine similarity of a recalled chunk."
    )
    token_budget: int = Field(
        default=1000, ge=50, le=16_000, description="Most tokens (about 4 characters) recalled."
    )
    remember_exchanges: bool = Field(
        default=True, description="Embed each finished run's input and answer for later recall."
    )


class SummarySettings(BaseModel):
    """How `memory: "summary"` keeps a long thread short: past `trigger_tokens`, the older
    messages are replaced by a summary the agent's own model writes (LangChain's
    summarisation middleware), keeping the latest `keep_messages` as they are."""

    model_config = ConfigDict(extra="forbid")

    trigger_tokens: int = Field(
        default=4000, ge=100, le=1_000_000, description="Summarise past this many tokens."
    )
    keep_messages: int = Field(default=6, ge=1, le=100, description="Latest messages kept.")


class AgentConfig(BaseModel):
    """How an agent runs. Unknown keys are refused so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")

    model: ModelRef = "openai:gpt-4o-mini"
    model_options: Annotated[dict[str, Any], AfterValidator(_bounded_json_options)] = Field(
        default_factory=dict
    )
    fallbacks: list[ModelRef] = Field(default_factory=list, max_length=5)
    system_prompt: str | None = Field(default=None, max_length=20_000)
    memory: Literal["none", "thread", "summary", "vector"] = "none"
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    summary: SummarySettings = Field(default_factory=SummarySettings)
    strategy: str = Field(
        default="react",
        pattern=STRATEGY_PATTERN,
        description="A registered reasoning strategy: react, plan_execute, todo or a plugin's.",
    )
    limits: Limits = Field(default_factory=Limits)
    cache_ttl_s: int | None = Field(default=None, ge=1, le=86_400 * 30)
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    tool_settings: dict[str, Annotated[dict[str, Any], AfterValidator(_bounded_json_options)]] = (
        Field(default_factory=dict, description="Per tool family: settings checked by its plugin.")
    )


class AgentInput(BaseModel):
    """Body of create: a name, the tool ids the agent may call, and its config."""

    model_config = ConfigDict(extra="forbid")

    name: AgentName
    tools: ToolIds = Field(default_factory=list)
    config: AgentConfig = Field(default_factory=AgentConfig)


class AgentPatch(BaseModel):
    """Partial update: only the given fields change; `config` replaces the whole config."""

    model_config = ConfigDict(extra="forbid")

    name: AgentName | None = None
    tools: ToolIds | None = None
    config: AgentConfig | None = None
