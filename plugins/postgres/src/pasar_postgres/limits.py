"""Limits of the postgres tools and the per-agent settings that tune them within hard maxima."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KIB = 1024
MIB = 1024 * KIB

CONNECT_TIMEOUT_S = 5.0
LOCK_TIMEOUT_MS = 2_000
IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000

DEFAULT_STATEMENT_TIMEOUT_MS = 10_000
MIN_STATEMENT_TIMEOUT_MS = 100
MAX_STATEMENT_TIMEOUT_MS = 30_000

DEFAULT_MAX_ROWS = 200
MAX_ROWS = 5_000
DEFAULT_MAX_BYTES = MIB
MIN_MAX_BYTES = 4 * KIB
MAX_BYTES = 4 * MIB
MAX_CELL_CHARS = 32 * KIB
FETCH_BATCH_ROWS = 100

MAX_SQL_CHARS = 100_000
MAX_PARAMS = 100
MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: longer names are silently truncated by PostgreSQL
MAX_LISTED_RELATIONS = 1_000
MAX_DSN_CHARS = 4_096

# The tool's own deadline (asyncio) sits above the statement timeout, so the database ends
# runaway statements first and reports them clearly; the deadline is the backstop.
TOOL_TIMEOUT_S = CONNECT_TIMEOUT_S + MAX_STATEMENT_TIMEOUT_MS / 1000 + 10

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")

SETTINGS_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "default_schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_IDENTIFIER_BYTES,
            "description": "Schema used by describe_table when none is given (default public).",
        },
        "max_rows": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_ROWS,
            "default": DEFAULT_MAX_ROWS,
            "description": "Most rows postgres:query returns.",
        },
        "max_bytes": {
            "type": "integer",
            "minimum": MIN_MAX_BYTES,
            "maximum": MAX_BYTES,
            "default": DEFAULT_MAX_BYTES,
            "description": "Most bytes of JSON rows postgres:query returns.",
        },
        "statement_timeout_ms": {
            "type": "integer",
            "minimum": MIN_STATEMENT_TIMEOUT_MS,
            "maximum": MAX_STATEMENT_TIMEOUT_MS,
            "default": DEFAULT_STATEMENT_TIMEOUT_MS,
            "description": "statement_timeout of every statement the tools run.",
        },
    },
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class Limits:
    """The effective limits of one call: the agent's settings, clamped to the hard maxima."""

    default_schema: str = "public"
    max_rows: int = DEFAULT_MAX_ROWS
    max_bytes: int = DEFAULT_MAX_BYTES
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS

    @property
    def deadline_s(self) -> float:
        """Client-side backstop for one call, past the server-side statement timeout."""
        return CONNECT_TIMEOUT_S + self.statement_timeout_ms / 1000 + 2


def _bounded(value: Any, default: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return max(low, min(high, value))


def limits_from_settings(settings: Mapping[str, Any]) -> Limits:
    """Settings are schema-checked when the agent is saved; clamp again so no path skips it."""
    schema = settings.get("default_schema")
    return Limits(
        default_schema=schema if isinstance(schema, str) and schema else "public",
        max_rows=_bounded(settings.get("max_rows"), DEFAULT_MAX_ROWS, 1, MAX_ROWS),
        max_bytes=_bounded(settings.get("max_bytes"), DEFAULT_MAX_BYTES, MIN_MAX_BYTES, MAX_BYTES),
        statement_timeout_ms=_bounded(
            settings.get("statement_timeout_ms"),
            DEFAULT_STATEMENT_TIMEOUT_MS,
            MIN_STATEMENT_TIMEOUT_MS,
            MAX_STATEMENT_TIMEOUT_MS,
        ),
    )
