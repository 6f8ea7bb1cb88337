"""pasar core: the plugin contract and the engine behind pasar's server."""

from __future__ import annotations

from pasar_core.hookspecs import hookimpl
from pasar_core.specs import (
    Effect,
    EmbeddingProviderSpec,
    LLMProviderSpec,
    StrategyParts,
    StrategySpec,
    ToolContext,
    ToolFamily,
    ToolSpec,
)

__all__ = [
    "Effect",
    "EmbeddingProviderSpec",
    "LLMProviderSpec",
    "StrategyParts",
    "StrategySpec",
    "ToolContext",
    "ToolFamily",
    "ToolSpec",
    "hookimpl",
]
