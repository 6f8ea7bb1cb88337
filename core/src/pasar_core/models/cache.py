"""Chat models and compiled agent graphs are built once and shared by runs: neither holds
per-run state (a run's state lives in the graph's input and in context variables), and reusing
models reuses their HTTP connection pools instead of leaking one per run."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

if TYPE_CHECKING:  # LangChain loads when the first run builds a model, not at start-up
    from langchain_core.language_models import BaseChatModel

MAX_ENTRIES = 256
T = TypeVar("T")


class BuiltCache(Generic[T]):
    """A bounded, least-recently-used map of built objects (one per process)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._models: OrderedDict[str, T] = OrderedDict()
        self._max_entries = max_entries

    @staticmethod
    def key(*parts: Any) -> str:
        return json.dumps(parts, sort_keys=True, default=str)

    def get(self, key: str, build: Callable[[], T]) -> T:
        model = self._models.get(key)
        if model is None:
            model = build()
            self._models[key] = model
            if len(self._models) > self._max_entries:
                self._models.popitem(last=False)
        else:
            self._models.move_to_end(key)
        return model

    def __len__(self) -> int:
        return len(self._models)


ModelCache: TypeAlias = BuiltCache["BaseChatModel"]
