"""The schema's document cache: a repeated text is validated once, and large unique documents
(one long string literal is one token, so the token limit does not bound their size) cannot
grow it past `maxsize` x `MAX_CACHED_CHARS` characters."""

from __future__ import annotations

from typing import Any

from pasar_graphql.documents import DEFAULT_MAXSIZE, MAX_CACHED_CHARS
from pasar_graphql.schema import build_schema


def test_a_repeated_document_is_validated_once(execute: Any) -> None:
    schema = build_schema()
    assert schema.documents is not None
    for _ in range(3):
        execute('{ tool(id: "files.read") { id } }', schema=schema)
    assert schema.documents.validations == 1
    assert len(schema.documents) == 1


def test_large_unique_documents_leave_the_cache_bounded(execute: Any) -> None:
    schema = build_schema()
    cache = schema.documents
    assert cache is not None
    literal = "A" * (4 * MAX_CACHED_CHARS)
    for index in range(DEFAULT_MAXSIZE + 20):
        body = execute(f'{{ tool(id: "{literal}{index:08d}") {{ id }} }}', schema=schema)
        assert "errors" not in body or all(
            error["extensions"]["code"] != "INTERNAL" for error in body["errors"]
        )
    assert cache.validations == DEFAULT_MAXSIZE + 20  # each validated, none kept
    assert len(cache) == 0
    assert cache.cached_chars == 0


def test_the_cache_text_total_is_bounded_at_its_largest(execute: Any) -> None:
    schema = build_schema()
    cache = schema.documents
    assert cache is not None
    prefix = '{ tool(id: "'
    suffix = '") { id } }'
    for index in range(DEFAULT_MAXSIZE * 2):
        fill = f"{index:08d}"
        fill += "B" * (MAX_CACHED_CHARS - len(prefix) - len(suffix) - len(fill))
        execute(prefix + fill + suffix, schema=schema)
    assert len(cache) == DEFAULT_MAXSIZE
    assert cache.cached_chars == DEFAULT_MAXSIZE * MAX_CACHED_CHARS
