"""`react`: the model thinks, calls tools, reads their results and repeats until it answers
(LangChain's `create_agent` loop)."""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent

from pasar_core.specs import StrategyParts


def build_react(parts: StrategyParts) -> Any:
    return create_agent(
        parts.model,
        list(parts.tools),
        system_prompt=parts.system_prompt,
        middleware=list(parts.middleware),
    )
