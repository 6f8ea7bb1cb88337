"""A small SQL lexer: enough to count statements, find the leading keyword and the functions
called, while skipping comments, strings, quoted identifiers and dollar quotes.

This is a guard rail in front of the real boundaries (a READ ONLY transaction and the database
role's privileges), not a parser: it refuses what it cannot read with certainty.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Literal

from pasar_core.errors import ToolError

TokenKind = Literal["word", "quoted", "string", "number", "param", "punct"]

_WORD = re.compile(r"[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*")
_NUMBER = re.compile(r"(?:[0-9][0-9A-Za-z_.]*|\.[0-9][0-9A-Za-z_]*)")
_PARAM = re.compile(r"\$[0-9]+")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")

READ_KEYWORDS = frozenset({"select", "with", "values", "table", "explain", "show"})
"""Statements postgres:query accepts; the READ ONLY transaction is what enforces read-only."""

EXECUTE_REFUSED_KEYWORDS = frozenset(
    {"copy", "begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release",
     "prepare", "load"}
)  # fmt: skip
"""COPY reads and writes the server's files or runs programs; transaction control is ours."""

_ESCAPING_FUNCTIONS = (
    r"dblink\w*",
    r"lo_\w+",
    r"be_lo_\w+",
    r"loread",
    r"lowrite",
    r"pg_read_(binary_)?file",
    r"pg_ls_\w+",
    r"pg_stat_file",
    r"pg_file_\w+",
    r"pg_logdir_ls",
)
"""Functions that reach outside the database: other servers, the server's file system."""

_SESSION_FUNCTIONS = (
    r"set_config",
    r"pg_(terminate|cancel|signal)_backend",
    r"pg_reload_conf",
    r"pg_rotate_logfile\w*",
    r"pg_promote",
    r"pg_\w*replication_(slot|origin)\w*",
    r"pg_replication_\w+",
    r"pg_logical_\w+",
    r"pg_switch_wal",
    r"pg_(backup|start_backup|stop_backup)\w*",
    r"pg_create_restore_point",
    r"pg_wal_replay_\w+",
    r"pg_(try_)?advisory_\w+",
    r"pg_notify",
    r"pg_stat_reset\w*",
    r"pg_log_backend_memory_contexts",
    r"pg_import_system_collations",
    r"pg_sync_replication_slots",
    r"query_to_xml\w*",
    r"query_to_xmlschema",
    r"cursor_to_xml\w*",
    r"ts_stat",
)
"""Functions a READ ONLY transaction does not stop: server control, settings, running SQL text."""

EXECUTE_DENIED = re.compile("|".join(_ESCAPING_FUNCTIONS))
QUERY_DENIED = re.compile("|".join(_ESCAPING_FUNCTIONS + _SESSION_FUNCTIONS))


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str
    """Lower-cased for words; the unescaped name for quoted identifiers; raw otherwise."""
    pos: int


def _refuse(reason: str) -> ToolError:
    return ToolError(f"refused SQL: {reason}")


def _skip_block_comment(sql: str, i: int) -> int:
    depth, i = 1, i + 2
    while depth:
        if i >= len(sql):
            raise _refuse("unterminated /* comment")
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def _end_of_quoted(sql: str, i: int, quote: str, *, backslash: bool) -> int:
    """Index after the closing quote of a literal opening at `i`; `quote` doubled escapes it."""
    i += 1
    while i < len(sql):
        ch = sql[i]
        if backslash and ch == "\\":
            i += 2
        elif ch == quote:
            if sql.startswith(quote * 2, i):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    kind = "quoted identifier" if quote == '"' else "string literal"
    raise _refuse(f"unterminated {kind}")


def tokenize(sql: str) -> list[Token]:
    """Tokens of `sql` without whitespace and comments (standard_conforming_strings on)."""
    tokens: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif ch == "'":
            end = _end_of_quoted(sql, i, "'", backslash=False)
            tokens.append(Token("string", sql[i:end], i))
            i = end
        elif ch == '"':
            end = _end_of_quoted(sql, i, '"', backslash=False)
            tokens.append(Token("quoted", sql[i + 1 : end - 1].replace('""', '"'), i))
            i = end
        elif ch == "$":
            if param := _PARAM.match(sql, i):
                tokens.append(Token("param", param.group(), i))
                i = param.end()
            elif tag := _DOLLAR_TAG.match(sql, i):
                close = sql.find(tag.group(), tag.end())
                if close < 0:
                    raise _refuse("unterminated dollar-quoted string")
                end = close + len(tag.group())
                tokens.append(Token("string", sql[i:end], i))
                i = end
            else:
                tokens.append(Token("punct", ch, i))
                i += 1
        elif word := _WORD.match(sql, i):
            text, end = word.group(), word.end()
            folded = text.lower()
            if folded == "u" and sql.startswith("&", end):
                raise _refuse("Unicode-escaped names and strings (U&...) are not supported")
            if folded in ("e", "b", "x", "n") and sql.startswith("'", end):
                close = _end_of_quoted(sql, end, "'", backslash=folded == "e")
                tokens.append(Token("string", sql[i:close], i))
                i = close
                continue
            tokens.append(Token("word", folded, i))
            i = end
        elif number := _NUMBER.match(sql, i):
            tokens.append(Token("number", number.group(), i))
            i = number.end()
        else:
            tokens.append(Token("punct", ch, i))
            i += 1
    return tokens


def single_statement(sql: str) -> list[Token]:
    """The tokens of the one statement in `sql` (a trailing `;` is fine); refuse anything else."""
    tokens = tokenize(sql)
    while tokens and tokens[-1].kind == "punct" and tokens[-1].text == ";":
        tokens.pop()
    if not tokens:
        raise _refuse("there is no statement")
    if any(token.kind == "punct" and token.text == ";" for token in tokens):
        raise _refuse("send one statement per call (found more than one, separated by ';')")
    return tokens


def leading_keyword(tokens: list[Token]) -> str:
    for token in tokens:
        if token.kind == "punct" and token.text == "(":
            continue
        return token.text if token.kind == "word" else ""
    return ""


def called_functions(tokens: list[Token]) -> list[str]:
    """Names written just before `(`: function calls (and some keywords, which is harmless)."""
    return [
        token.text.lower()
        for token, following in itertools.pairwise(tokens)
        if token.kind in ("word", "quoted") and following.kind == "punct" and following.text == "("
    ]


def check_read_statement(sql: str) -> None:
    """postgres:query: one SELECT-like statement calling no function that escapes read-only."""
    tokens = single_statement(sql)
    keyword = leading_keyword(tokens)
    if keyword not in READ_KEYWORDS:
        shown = keyword.upper() or "this statement"
        raise ToolError(
            f"postgres:query only runs read-only statements "
            f"({', '.join(sorted(k.upper() for k in READ_KEYWORDS))}); {shown[:40]} is not one. "
            "Use postgres:execute for writes."
        )
    for name in called_functions(tokens):
        if QUERY_DENIED.fullmatch(name):
            raise _refuse(f"postgres:query does not call {name[:63]}()")


def check_write_statement(sql: str) -> None:
    """postgres:execute: one statement that stays inside this database."""
    tokens = single_statement(sql)
    keyword = leading_keyword(tokens)
    if keyword in EXECUTE_REFUSED_KEYWORDS:
        raise _refuse(
            f"postgres:execute does not run {keyword.upper()} "
            "(each call is its own transaction; COPY touches the server's files)"
        )
    if keyword == "alter" and len(tokens) > 1 and tokens[1].text == "system":
        raise _refuse("postgres:execute does not run ALTER SYSTEM")
    for name in called_functions(tokens):
        if EXECUTE_DENIED.fullmatch(name):
            raise _refuse(f"postgres:execute does not call {name[:63]}()")
