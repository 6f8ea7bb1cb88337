"""Chat models are built once per (model, options) and shared by runs: they hold no per-run
state, and reusing them reuses their HTTP connection pools instead of leaking one per run."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel

MAX_MODELS = 256


class ModelCache:
    """A bounded, least-recently-used map of built chat models (one per process)."""

    def __init__(self, max_entries: int = MAX_MODELS) -> None:
        self._models: OrderedDict[str, BaseChatModel] = OrderedDict()
        self._max_entries = max_entries

    @staticmethod
    def key(model_ref: str, options: Mapping[str, Any]) -> str:
        return json.dumps([model_ref, options], sort_keys=True, default=str)

    def get(self, key: str, build: Callable[[], BaseChatModel]) -> BaseChatModel:
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
