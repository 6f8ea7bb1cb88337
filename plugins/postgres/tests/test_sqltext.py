from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pasar_core.errors import ToolError
from pasar_postgres.sqltext import (
    called_functions,
    check_read_statement,
    leading_keyword,
    single_statement,
    tokenize,
)


def test_tokens_skip_comments_strings_and_quotes() -> None:
    tokens = tokenize(
        "SELECT /* a /* nested */ ; */ 'it''s;' AS \"Co\"\"l\", E'\\';' , $t$ ; $t$, $1 -- ;"
    )
    assert [(t.kind, t.text) for t in tokens] == [
        ("word", "select"), ("string", "'it''s;'"), ("word", "as"), ("quoted", 'Co"l'),
        ("punct", ","), ("string", "E'\\';'"), ("punct", ","), ("string", "$t$ ; $t$"),
        ("punct", ","), ("param", "$1"),
    ]  # fmt: skip


def test_leading_keyword_and_calls() -> None:
    tokens = single_statement('((SELECT Foo(1), x."Bar" (2), count(*) FROM t));')
    assert leading_keyword(tokens) == "select"
    assert called_functions(tokens) == ["foo", "bar", "count"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_the_lexer_never_crashes(sql: str) -> None:
    with contextlib.suppress(ToolError):
        check_read_statement(sql)


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1", "select 1;", "  (values (1))", "TABLE t", "WITH x AS (SELECT 1) SELECT * FROM x"],
)
def test_reads_pass(sql: str) -> None:
    check_read_statement(sql)
