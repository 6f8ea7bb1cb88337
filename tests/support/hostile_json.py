"""Hypothesis strategies for request bodies an attacker sends: each is refused at decoding."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import strategies as st

JSON = "application/json"
SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
VALUES = st.recursive(
    SCALARS | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)  # fmt: skip


@dataclass(frozen=True)
class HostileBody:
    kind: str
    content_type: str
    content: bytes

    def __repr__(self) -> str:  # hypothesis prints failing examples; keep them short
        return f"HostileBody({self.kind}, {self.content_type!r}, {self.content[:60]!r}...)"


def _wrap(kind: str, text: bytes, content_type: str = JSON) -> HostileBody:
    return HostileBody(kind, content_type, text)


def deep_nesting() -> st.SearchStrategy[HostileBody]:
    def nest(depth: int, openers: str, leaf: str) -> HostileBody:
        text, closers = "", ""
        for index in range(depth):
            opener = openers[index % len(openers)]
            text += '{"k": ' if opener == "{" else "["
            closers = ("}" if opener == "{" else "]") + closers
        return _wrap(f"nested {depth}", (text + leaf + closers).encode())

    return st.builds(
        nest,
        st.integers(min_value=65, max_value=6000),
        st.sampled_from(["[", "{", "[{", "{[", "[[{"]),
        st.sampled_from(["1", '"x"', "null", "[]", "{}"]),
    )


def invalid_utf8() -> st.SearchStrategy[HostileBody]:
    def spoil(value: object, bad: bytes, at: float) -> HostileBody:
        text = json.dumps({"query": "{ tools { id } }", "email": "a@b.co", "v": value}).encode()
        cut = int(len(text) * at)
        return _wrap("invalid utf-8", text[:cut] + bad + text[cut:])

    bad_bytes = st.sampled_from(
        [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]
    )
    return st.builds(spoil, VALUES, bad_bytes, st.floats(min_value=0, max_value=1))


def bare_scalars() -> st.SearchStrategy[HostileBody]:
    return st.builds(lambda v: _wrap("bare scalar", json.dumps(v).encode()), SCALARS) | st.sampled_from(
        [_wrap("bare scalar", t) for t in (b"null", b"true", b'""', b"0", b"-1.5e3", b" null ")]
    )  # fmt: skip


def huge_numbers() -> st.SearchStrategy[HostileBody]:
    number = st.one_of(
        st.integers(min_value=4301, max_value=20_000).map(lambda n: "9" * n),
        st.integers(min_value=309, max_value=100_000).map(lambda e: f"1e{e}"),
        st.integers(min_value=309, max_value=100_000).map(lambda e: f"-2.5E+{e}"),
    )
    return st.builds(
        lambda n: _wrap("huge number", f'{{"email": "a@b.co", "variables": {{"n": {n}}}, "n": {n}}}'.encode()),
        number,
    )  # fmt: skip


def not_a_number() -> st.SearchStrategy[HostileBody]:
    constant = st.sampled_from(["NaN", "Infinity", "-Infinity"])
    return st.builds(
        lambda c: _wrap("NaN", f'{{"query": "{{ tools {{ id }} }}", "variables": {{"x": {c}}}, "name": {c}}}'.encode()),
        constant,
    )  # fmt: skip


def duplicate_keys() -> st.SearchStrategy[HostileBody]:
    key = st.sampled_from(["query", "email", "password", "name", "variables", "input", "decision"])
    return st.builds(
        lambda k, a, b: _wrap("duplicate key", f'{{"{k}": {json.dumps(a)}, "{k}": {json.dumps(b)}}}'.encode()),
        key, VALUES, VALUES,
    )  # fmt: skip


def lone_surrogates() -> st.SearchStrategy[HostileBody]:
    escape = st.sampled_from(["\\ud800", "\\udfff", "\\uDBFF x", "\\ude00\\ud83d"])
    return st.builds(
        lambda e: _wrap("lone surrogate", f'{{"query": "{{ tools {{ id }} }}", "email": "a{e}@b.co", "variables": {{"s": "{e}"}}}}'.encode()),
        escape,
    )  # fmt: skip


def truncated_or_garbage() -> st.SearchStrategy[HostileBody]:
    def truncate(value: object, at: float) -> HostileBody:
        text = json.dumps({"query": "{ tools { id } }", "v": value}).encode()
        return _wrap("truncated", text[: max(0, int(len(text) * at) - 1)])

    return st.builds(truncate, VALUES, st.floats(min_value=0, max_value=1)) | st.builds(
        lambda b: _wrap("garbage", b), st.binary(max_size=60)
    )


def wrong_content_types() -> st.SearchStrategy[HostileBody]:
    content_type = st.sampled_from(
        ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
         "application/xml", "", "application/graphql", "application/octet-stream"]
    )  # fmt: skip
    return st.builds(
        lambda ct, v: HostileBody("wrong content type", ct, json.dumps(v).encode()),
        content_type,
        st.fixed_dictionaries({"query": st.just("{ tools { id } }"), "email": st.just("a@b.co")})
        | VALUES,
    )


HOSTILE_BODIES = st.one_of(
    deep_nesting(),
    invalid_utf8(),
    bare_scalars(),
    huge_numbers(),
    not_a_number(),
    duplicate_keys(),
    lone_surrogates(),
    truncated_or_garbage(),
    wrong_content_types(),
)
"""Bodies that must be refused as they are decoded, whatever route they reach."""
