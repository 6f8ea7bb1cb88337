"""decode_json: what every surface reads from a client. Valid JSON comes back as it was sent;
everything else is one MalformedJson (400 BAD_REQUEST), never a RecursionError or ValueError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pasar_core.json_input import MAX_JSON_DEPTH, MalformedJson, decode_json

VALID = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=30,
)


@given(value=VALID, as_bytes=st.booleans(), ascii_only=st.booleans())
def test_valid_json_round_trips(value: object, as_bytes: bool, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert decode_json(text.encode() if as_bytes else text) == value


def nested(depth: int, opener: str = "[") -> str:
    closer = {"[": "]", '{"k":': "}"}[opener]
    return opener * depth + "1" + closer * depth


@pytest.mark.parametrize("opener", ["[", '{"k":'])
def test_nesting_is_bounded(opener: str) -> None:
    assert decode_json(nested(MAX_JSON_DEPTH, opener)) is not None
    for depth in (MAX_JSON_DEPTH + 1, 1000, 5000, 100_000):
        with pytest.raises(MalformedJson) as refused:
            decode_json(nested(depth, opener))
        assert refused.value.code == "BAD_REQUEST"
        assert refused.value.details == {"max_depth": MAX_JSON_DEPTH}
    # Brackets inside strings are text, not nesting.
    assert decode_json(json.dumps({"text": "[" * 1000})) == {"text": "[" * 1000}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff{}", "not valid JSON"),
        (b'{"a": "\xed\xa0\x80"}', "not valid JSON"),  # an encoded surrogate is not UTF-8
        ('{"a": 1}'.encode("utf-16"), "not valid JSON"),
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b'{"a": NaN}', "NaN"),
        (b"[Infinity]", "Infinity"),
        (b"-Infinity", "Infinity"),
        (b"1e400", "too large"),
        (b'{"a": -1.5e999}', "too large"),
        (b"9" * 5000, "not valid JSON"),
        (b'{"a": 1, "b": 2, "a": 3}', "repeats the key 'a'"),
        (b'[{"x": {"y": 1, "y": 1}}]', "repeats the key 'y'"),
        (b'"\\ud800"', "lone UTF-16 surrogate"),
        (b'{"\\udfff": 1}', "lone UTF-16 surrogate"),
        ('"\ud800"', "lone UTF-16 surrogate"),
    ],
)
def test_malformed_json_is_one_typed_error(data: bytes | str, reason: str) -> None:
    with pytest.raises(MalformedJson, match=reason) as refused:
        decode_json(data)
    assert refused.value.status == 400


def test_surrogate_pairs_are_one_character() -> None:
    assert decode_json(b'"\\ud83d\\ude00"') == "\U0001f600"
