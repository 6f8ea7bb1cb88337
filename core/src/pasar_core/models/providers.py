"""Built-in model providers, registered through the `register_llm_providers` hook like any
plugin's: `openai`, `openai-compatible`, `anthropic`, `ollama` and `scripted`."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from pasar_core.errors import ProviderUnavailable
from pasar_core.hookspecs import hookimpl
from pasar_core.models.scripted import ScriptedChatModel, ScriptedOptions
from pasar_core.specs import LLMProviderSpec

# What an agent may tune; keys and endpoints only ever come from the server's environment.
COMMON_OPTIONS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": 200_000},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
        "max_retries": {"type": "integer", "minimum": 0, "maximum": 10},
        "seed": {"type": "integer"},
        "stop": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
    },
    "additionalProperties": False,
}


def _import(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ProviderUnavailable(
            f"the {module} package is not installed: pip install 'pasar-core[{extra}]' "
            f"(or pip install {module.replace('_', '-')})"
        ) from None


def _require(env: Mapping[str, str], name: str, provider: str) -> str:
    value = env.get(name)
    if not value:
        raise ProviderUnavailable(
            f"set {name} in the server's environment to use {provider} models"
        )
    return value


def _openai(model: str, options: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    from langchain_openai import ChatOpenAI

    key = _require(env, "OPENAI_API_KEY", "openai")
    return ChatOpenAI(model=model, api_key=key, base_url=env.get("OPENAI_BASE_URL"), **options)


def _openai_compatible(model: str, options: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    from langchain_openai import ChatOpenAI

    base_url = _require(env, "PASAR_OPENAI_COMPATIBLE_BASE_URL", "openai-compatible")
    key = env.get("PASAR_OPENAI_COMPATIBLE_API_KEY") or "not-needed"
    return ChatOpenAI(model=model, api_key=key, base_url=base_url, **options)


def _anthropic(model: str, options: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    module = _import("langchain_anthropic", "anthropic")
    key = _require(env, "ANTHROPIC_API_KEY", "anthropic")
    endpoint = {"base_url": env["ANTHROPIC_BASE_URL"]} if env.get("ANTHROPIC_BASE_URL") else {}
    return module.ChatAnthropic(model=model, api_key=key, **endpoint, **options)


def _ollama(model: str, options: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    module = _import("langchain_ollama", "ollama")
    base_url = env.get("OLLAMA_BASE_URL", "http://127.0.0.1:11434")
    return module.ChatOllama(model=model, base_url=base_url, **options)


def _scripted(model: str, options: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    return ScriptedChatModel(options=ScriptedOptions.model_validate(dict(options)))


@hookimpl
def register_llm_providers() -> list[LLMProviderSpec]:
    return [
        LLMProviderSpec("openai", "OpenAI", _openai, options_schema=COMMON_OPTIONS),
        LLMProviderSpec(
            "openai-compatible",
            "Any OpenAI-compatible server (vLLM, llama.cpp, LM Studio)",
            _openai_compatible,
            options_schema=COMMON_OPTIONS,
        ),
        LLMProviderSpec(
            "anthropic",
            "Anthropic",
            _anthropic,
            requires=("langchain-anthropic",),
            options_schema=COMMON_OPTIONS,
        ),
        LLMProviderSpec(
            "ollama",
            "Ollama",
            _ollama,
            requires=("langchain-ollama",),
            options_schema=COMMON_OPTIONS,
        ),
        LLMProviderSpec(
            "scripted",
            "Scripted replies for tests, demos and benchmarks",
            _scripted,
            options_schema=ScriptedOptions.model_json_schema(),
        ),
    ]
