"""What an embedding provider's factory returns, and the per-process cache of built embedders."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, cast

from pasar_core.errors import PasarError, ProviderUnavailable
from pasar_core.registry import Registry

MAX_DIMENSIONS = 2000
"""pgvector's HNSW indexes take at most 2,000 dimensions."""


class Embedder(Protocol):
    """One embedding model. `embed` may block (a local model runs on this CPU): pasar calls it
    in a worker thread, never on the event loop."""

    @property
    def dimensions(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def split_embedding_ref(ref: str) -> tuple[str, str]:
    provider, _, model = ref.partition(":")
    return provider, model


class Embedders:
    """Embedders built once per process and model reference (`local:all-minilm-l6-v2`)."""

    def __init__(self) -> None:
        self._built: dict[str, Embedder] = {}
        self._lock = threading.Lock()

    def get(self, registry: Registry, env: Mapping[str, str], ref: str) -> Embedder:
        with self._lock:
            if ref not in self._built:
                self._built[ref] = _build(registry, env, ref)
            return self._built[ref]


def _build(registry: Registry, env: Mapping[str, str], ref: str) -> Embedder:
    provider_id, model = split_embedding_ref(ref)
    provider = registry.embedding_providers.get(provider_id)
    if provider is None or not model:
        raise ProviderUnavailable(
            f"no embedding provider {provider_id!r} is installed",
            details={"installed": sorted(registry.embedding_providers)},
        )
    factory: Callable[[str, Mapping[str, str]], object] = provider.factory
    try:
        embedder = factory(model, env)
    except PasarError:
        raise
    except Exception as error:
        raise ProviderUnavailable(f"could not build {ref}: {error}") from error
    # On the type: reading `dimensions` may ask the model (an API's unknown size).
    kind = type(embedder)
    if not (callable(getattr(kind, "embed", None)) and hasattr(kind, "dimensions")):
        raise ProviderUnavailable(f"provider {provider_id!r} did not return an embedder")
    return cast("Embedder", embedder)


def checked_vectors(ref: str, texts: Sequence[str], vectors: list[list[float]]) -> None:
    """Refuse an embedder's answer that pgvector could not index or that mixes sizes."""
    sizes = {len(vector) for vector in vectors}
    if len(vectors) != len(texts) or len(sizes) > 1:
        raise ProviderUnavailable(f"{ref} answered {len(vectors)} vectors for {len(texts)} texts")
    if sizes and not 1 <= sizes.pop() <= MAX_DIMENSIONS:
        raise ProviderUnavailable(f"{ref}'s vectors must have 1 to {MAX_DIMENSIONS} dimensions")
