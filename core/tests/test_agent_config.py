"""Agent config parsing: anything is either a valid, JSON-storable config or a ValidationFailed."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pasar_core.agents.config import AgentConfig, AgentInput
from pasar_core.errors import ValidationFailed
from pasar_core.schemas import parse_model

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=15,
)
CONFIGS = st.dictionaries(
    st.sampled_from(["model", "model_options", "fallbacks", "system_prompt", "memory", "strategy",
                     "limits", "cache_ttl_s", "unknown"]),
    JSON
    | st.sampled_from(["scripted", "openai:gpt-4o-mini", "ollama:llama3.2", "none", "react"])
    | st.fixed_dictionaries({}, optional={"max_steps": JSON, "timeout_s": st.floats(), "x": JSON}),
    max_size=5,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(config=CONFIGS)
def test_any_config_is_valid_and_storable_or_refused(config: dict[str, Any]) -> None:
    try:
        parsed = parse_model(AgentConfig, config)
    except ValidationFailed as error:
        assert error.details["errors"]
        assert all(problem["path"].startswith("/") for problem in error.details["errors"])
        return
    stored = json.dumps(parsed.model_dump(mode="json"), allow_nan=False)
    assert AgentConfig.model_validate_json(stored) == parsed


@pytest.mark.parametrize(
    "options", [{"t": math.nan}, {"t": [1.0, math.inf]}, {"nested": {"deep": -math.inf}}]
)
def test_non_finite_numbers_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed, match="finite"):
        parse_model(AgentConfig, {"model_options": options})


def test_limits_refuse_infinity() -> None:
    with pytest.raises(ValidationFailed, match="/limits/timeout_s"):
        parse_model(AgentConfig, {"limits": {"timeout_s": math.inf}})


@pytest.mark.parametrize(
    "model", ["scripted", "openai:gpt-4o-mini", "openai-compatible:llama3", "ollama:llama3.2:1b"]
)
def test_model_references(model: str) -> None:
    assert parse_model(AgentConfig, {"model": model}).model == model


@pytest.mark.parametrize("model", ["gpt-4o", "OpenAI:gpt", "openai:", ":x", "openai:has space"])
def test_bad_model_references(model: str) -> None:
    with pytest.raises(ValidationFailed, match="/model"):
        parse_model(AgentConfig, {"model": model})


def test_agent_input_defaults_and_trimming() -> None:
    parsed = parse_model(AgentInput, {"name": "  helper  "})
    assert parsed.name == "helper"
    assert parsed.tools == []
    assert parsed.config == AgentConfig()
