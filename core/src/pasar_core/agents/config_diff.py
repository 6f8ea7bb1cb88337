"""A structured diff of two agent snapshots: the paths added, removed and changed.

Objects are walked key by key (`config.limits.max_steps`); lists and scalars are compared as
whole values, so a reordered tool list is one change of `tools`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    kind: ChangeKind
    old: Any = None
    new: Any = None

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "old": self.old, "new": self.new}


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every difference from `old` to `new`, sorted by path."""
    return sorted(_walk(old, new, ""), key=lambda change: change.path)


def _same(old: Any, new: Any) -> bool:
    """Equal as JSON: `1` and `true`, or `1` and `1.0`, are different values of a config."""
    return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)


def _walk(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str) -> Iterator[Change]:
    for key in old.keys() | new.keys():
        path = f"{prefix}{key}"
        if key not in new:
            yield Change(path, "removed", old=old[key])
        elif key not in old:
            yield Change(path, "added", new=new[key])
        elif isinstance(old[key], Mapping) and isinstance(new[key], Mapping):
            yield from _walk(old[key], new[key], f"{path}.")
        elif not _same(old[key], new[key]):
            yield Change(path, "changed", old=old[key], new=new[key])
