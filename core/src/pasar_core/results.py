"""A tool's result as the model reads it (JSON text), and the size of it, bounded before it is made.

Every family's results pass the same cap (`Settings.max_tool_result_bytes`) in
`Registry.invoke`. Small results are checked inline; anything bigger is measured, serialised and
validated in a worker thread, so a huge result never stalls the event loop. `size_floor` walks the
value in pure Python (the thread gives the GIL back to the loop every few milliseconds) and stops as
soon as the JSON is known to be over the cap, so a result of a gigabyte costs about as much as one
of the cap, and C-level `json.dumps` (which holds the GIL throughout) only ever sees a value whose
JSON is near the cap.
"""

from __future__ import annotations

import json
from typing import Any

MIB = 1024 * 1024
DEFAULT_MAX_TOOL_RESULT_BYTES = 4 * MIB

SMALL_NODES = 500
SMALL_CHARS = 64 * 1024
"""A result with at most this many values and characters is checked inline: cheaper than a
thread hop, and never more than a fraction of a millisecond of work."""

_ATOMS = (bool, int, float, type(None))


def model_json(value: Any) -> str:
    """The text the model reads for a tool result (ASCII only, so characters are bytes)."""
    return json.dumps(value, default=str)


def is_small(value: Any) -> bool:
    """Whether `value` is plain JSON with few values and little text (bounded walk)."""
    stack = [value]
    nodes = chars = 0
    while stack:
        item = stack.pop()
        nodes += 1
        if nodes > SMALL_NODES:
            return False
        if isinstance(item, str):
            chars += len(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    return False
                chars += len(key)
                stack.append(child)
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif not isinstance(item, _ATOMS):
            return False  # `default=str` would make text of unknown size
        if chars > SMALL_CHARS:
            return False
    return True


def size_floor(value: Any, stop_above: int) -> int:
    """A lower bound of `len(model_json(value))`; the walk stops once it passes `stop_above`.

    Escapes only make the real text longer, so a floor over the cap proves the result too big.
    Containers met twice (shared or circular) are counted again, as `json.dumps` would write them.
    """
    stack = [value]
    total = 0
    while stack and total <= stop_above:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, bool) or item is None:
            total += 4
        elif isinstance(item, int | float):
            total += 1
        elif isinstance(item, dict):
            total += 2 + max(0, 4 * len(item) - 2)  # braces, ": " after keys, ", " between
            for key, child in item.items():
                total += len(key) + 2 if isinstance(key, str) else 1
                stack.append(child)
        elif isinstance(item, list | tuple):
            total += 2 + max(0, 2 * len(item) - 2)
            stack.extend(item)
        else:
            total += len(str(item)) + 2
    return total
