"""Access log lines never carry query strings (OAuth codes and states travel there)."""

from __future__ import annotations

import logging

from pasar.access_log import DropQueryStrings


def record(path: str) -> logging.LogRecord:
    return logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", 200), None,
    )  # fmt: skip


def test_query_strings_are_redacted() -> None:
    entry = record("/auth/google/callback?code=4/secret-code&state=abc")
    assert DropQueryStrings().filter(entry)
    message = entry.getMessage()
    assert "secret-code" not in message
    assert "/auth/google/callback?[redacted]" in message


def test_paths_without_query_are_untouched() -> None:
    entry = record("/agents")
    DropQueryStrings().filter(entry)
    assert '"GET /agents HTTP/1.1" 200' in entry.getMessage()
