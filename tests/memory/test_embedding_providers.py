"""The `register_embedding_providers` hook: built-in providers, a third-party one, clashes, and
the OpenAI-compatible provider against a local stub server (the network edge)."""

from __future__ import annotations

import types
from collections.abc import Iterator

import pytest
from pasar_core import EmbeddingProviderSpec, hookimpl
from pasar_core.errors import DuplicateRegistration, ProviderUnavailable
from pasar_core.memory.embedder import Embedders
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import build_registry

from tests.support.openai_stub import STUB_EMBEDDING_DIMENSIONS, build_stub
from tests.support.servers import serve_in_thread


class LetterCounts:
    dimensions = 26

    def embed(self, texts):
        return [[text.lower().count(chr(97 + i)) + 0.01 for i in range(26)] for text in texts]


def letters_plugin(provider_id: str = "letters") -> types.SimpleNamespace:
    @hookimpl
    def register_embedding_providers():
        return [EmbeddingProviderSpec(provider_id, "Letter counts", lambda m, env: LetterCounts())]

    return types.SimpleNamespace(register_embedding_providers=register_embedding_providers)


def test_the_built_in_providers_are_registered() -> None:
    registry = build_registry(build_plugin_manager())
    assert {"local", "openai", "openai-compatible"} <= set(registry.embedding_providers)


def test_a_plugin_adds_an_embedding_model_with_its_own_size() -> None:
    registry = build_registry(build_plugin_manager(enabled=(), extra=[letters_plugin()]))
    embedder = Embedders().get(registry, {}, "letters:any")
    assert embedder.dimensions == 26
    assert embedder.embed(["ab"])[0][:3] == [1.01, 1.01, 0.01]


def test_a_provider_id_registered_twice_refuses_start_up() -> None:
    pm = build_plugin_manager(enabled=(), extra=[letters_plugin(), letters_plugin()])
    with pytest.raises(DuplicateRegistration, match="letters"):
        build_registry(pm)


def test_an_unknown_provider_or_a_non_embedder_is_a_typed_error() -> None:
    @hookimpl
    def register_embedding_providers():
        return [EmbeddingProviderSpec("wrong", "Not an embedder", lambda m, env: object())]

    plugin = types.SimpleNamespace(register_embedding_providers=register_embedding_providers)
    registry = build_registry(build_plugin_manager(enabled=(), extra=[plugin]))
    with pytest.raises(ProviderUnavailable, match="no embedding provider 'nope'"):
        Embedders().get(registry, {}, "nope:model")
    with pytest.raises(ProviderUnavailable, match="did not return an embedder"):
        Embedders().get(registry, {}, "wrong:model")


@pytest.fixture
def stub() -> Iterator[tuple[str, list[dict[str, object]]]]:
    app = build_stub()
    with serve_in_thread(app) as base_url:
        yield base_url, app.state.requests


def test_openai_compatible_embeddings_come_from_the_configured_server(stub) -> None:
    base_url, requests = stub
    env = {"PASAR_OPENAI_COMPATIBLE_BASE_URL": f"{base_url}/v1"}
    registry = build_registry(build_plugin_manager())
    embedders = Embedders()
    embedder = embedders.get(registry, env, "openai-compatible:stub-embed")
    vectors = embedder.embed(["red apples", "green pears"])
    assert len(vectors) == 2
    assert embedder.dimensions == STUB_EMBEDDING_DIMENSIONS  # read off the model's answer
    assert requests[-1]["model"] == "stub-embed"
    assert requests[-1]["input"] == ["red apples", "green pears"]
    assert (
        embedders.get(registry, env, "openai-compatible:stub-embed") is embedder
    )  # built once per process


def test_openai_compatible_embeddings_need_a_base_url_and_report_server_errors(stub) -> None:
    base_url, _ = stub
    registry = build_registry(build_plugin_manager())
    with pytest.raises(ProviderUnavailable, match="PASAR_OPENAI_COMPATIBLE_BASE_URL"):
        Embedders().get(registry, {}, "openai-compatible:stub-embed")
    env = {"PASAR_OPENAI_COMPATIBLE_BASE_URL": f"{base_url}/v1"}
    broken = Embedders().get(registry, env, "openai-compatible:broken")
    with pytest.raises(ProviderUnavailable, match="embeddings API failed"):
        broken.embed(["x"])


def test_the_local_model_is_the_only_local_one() -> None:
    with pytest.raises(ProviderUnavailable, match="all-minilm-l6-v2"):
        Embedders().get(build_registry(build_plugin_manager()), {}, "local:other")
