"""Chat models are shared between runs, bounded, keyed by model and options."""

from __future__ import annotations

from pasar_core.agents.builder import build_model
from pasar_core.models.cache import ModelCache
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import build_registry

SCRIPT = {"script": [{"content": "hi"}]}


def test_same_model_and_options_share_one_instance() -> None:
    registry = build_registry(build_plugin_manager(enabled=("llm_providers",)))
    cache = ModelCache()
    first = build_model(registry, "scripted", SCRIPT, {}, cache)
    assert build_model(registry, "scripted", dict(SCRIPT), {}, cache) is first
    other = build_model(registry, "scripted", {"script": [{"content": "bye"}]}, {}, cache)
    assert other is not first
    assert len(cache) == 2
    assert build_model(registry, "scripted", SCRIPT, {}) is not first  # no cache: always new


def test_least_recently_used_models_are_dropped() -> None:
    cache = ModelCache(max_entries=2)
    registry = build_registry(build_plugin_manager(enabled=("llm_providers",)))
    models = {
        name: build_model(registry, "scripted", {"script": [{"content": name}]}, {}, cache)
        for name in ("a", "b")
    }
    assert (
        build_model(registry, "scripted", {"script": [{"content": "a"}]}, {}, cache) is models["a"]
    )
    build_model(registry, "scripted", {"script": [{"content": "c"}]}, {}, cache)  # evicts "b"
    assert len(cache) == 2
    again = build_model(registry, "scripted", {"script": [{"content": "b"}]}, {}, cache)
    assert again is not models["b"]
