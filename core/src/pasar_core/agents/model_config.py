"""Which model provider an agent names, and whether its `model_options` fit: checked when an
agent is saved, without loading LangChain (building the model is pasar_core.agents.builder's)."""

from __future__ import annotations

from jsonschema import Draft202012Validator

from pasar_core.agents.config import AgentConfig
from pasar_core.errors import ProviderNotFound, ValidationFailed
from pasar_core.registry import Registry
from pasar_core.schemas import validation_errors
from pasar_core.specs import LLMProviderSpec, StrategySpec


def split_model_ref(model_ref: str) -> tuple[str, str]:
    provider, _, model = model_ref.partition(":")
    return provider, model


def resolve_provider(registry: Registry, model_ref: str) -> tuple[LLMProviderSpec, str]:
    provider_id, model = split_model_ref(model_ref)
    provider = registry.llm_providers.get(provider_id)
    if provider is None:
        raise ProviderNotFound(
            f"no model provider {provider_id!r} is installed",
            details={"installed": sorted(registry.llm_providers)},
        )
    return provider, model


def strategy_for(registry: Registry, strategy_id: str) -> StrategySpec:
    """The registered strategy an agent names; an unknown one is a typed error naming the field."""
    strategy = registry.strategies.get(strategy_id)
    if strategy is None:
        raise ValidationFailed(
            f"config.strategy: no strategy {strategy_id[:100]!r} is installed",
            details={
                "errors": [{"path": "/config/strategy", "message": "unknown strategy"}],
                "field": "config.strategy",
                "installed": sorted(registry.strategies),
            },
        )
    return strategy


def check_model_config(registry: Registry, config: AgentConfig) -> None:
    """Providers and the strategy exist and `model_options` fit the main provider's options
    schema."""
    provider, _ = resolve_provider(registry, config.model)
    strategy_for(registry, config.strategy)
    for fallback in config.fallbacks:
        resolve_provider(registry, fallback)
    if config.memory == "vector":
        embedding_provider, _ = split_model_ref(config.knowledge.embedding_model)
        if embedding_provider not in registry.embedding_providers:
            raise ProviderNotFound(
                f"no embedding provider {embedding_provider!r} is installed",
                details={"installed": sorted(registry.embedding_providers)},
            )
    if provider.options_schema is not None:
        problems = validation_errors(
            Draft202012Validator(provider.options_schema), config.model_options
        )
        if problems:
            first = problems[0]
            raise ValidationFailed(
                f"invalid model_options for {provider.id}: {first['path']}: {first['message']}",
                details={"errors": [{**p, "path": "/config/model_options" + p["path"].rstrip("/")}
                                    for p in problems]},
            )  # fmt: skip
