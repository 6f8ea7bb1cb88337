"""JSON a client sent, decoded once for every surface (REST bodies, GraphQL bodies, query
parameters and websocket messages): bounded nesting, finite numbers, unique keys, valid Unicode.

Python's `json` recurses in C up to the interpreter's recursion limit, then raises
RecursionError; code that walks a decoded value recurses too (validators, GraphQL coercion,
encoders). A small explicit bound keeps every later step far from that limit.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

from pasar_core.errors import BadRequest

MAX_JSON_DEPTH = 64
"""Arrays and objects nested deeper than this are refused."""

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class MalformedJson(BadRequest):
    """Not JSON, or JSON this server refuses to read (see `decode_json`)."""


def decode_json(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value in `data`, or `MalformedJson` (a 400 `BAD_REQUEST`) when it is not
    well-formed UTF-8 JSON, nests deeper than `max_depth`, has NaN, Infinity or a number too
    large for a float, repeats a key in one object, or has a lone surrogate escape."""
    try:
        # JSON on the wire is UTF-8 (RFC 8259); json.loads would also take UTF-16 and UTF-8
        # encoded surrogates ("surrogatepass"), which nothing downstream can store.
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise _too_deep(max_depth) from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise MalformedJson(f"not valid JSON: {error}") from None
    # Cheap upper bounds first: a text with few brackets cannot nest deeply.
    if text.count("[") + text.count("{") > max_depth and _nests_deeper(value, max_depth):
        raise _too_deep(max_depth)
    if _SURROGATE.search(text) or (_SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value)):
        raise MalformedJson("the JSON has a lone UTF-16 surrogate (not valid Unicode)")
    return value


def _too_deep(max_depth: int) -> MalformedJson:
    return MalformedJson(
        f"the JSON nests arrays or objects deeper than {max_depth} levels",
        details={"max_depth": max_depth},
    )


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (and PostgreSQL's jsonb) does not.
    raise MalformedJson(f"not valid JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise MalformedJson(f"the JSON has a number too large for a float: {text[:40]}")
    return number


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        counts = Counter(key for key, _ in pairs)
        duplicate = next(key for key, count in counts.items() if count > 1)
        raise MalformedJson(f"the JSON repeats the key {duplicate[:80]!r} in one object")
    return result


def _nests_deeper(value: Any, max_depth: int) -> bool:
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            return True
        below: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            below += [child for child in children if isinstance(child, (dict, list))]
        level = below
    return False


def _has_lone_surrogate(value: Any) -> bool:
    # json joins escaped surrogate pairs into one code point; what is left is a lone half.
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False
