"""postgres:query (one statement in a READ ONLY transaction, streamed under row and byte caps)
and postgres:execute (one statement that may write, gated as destructive)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from pasar_core.errors import ToolError
from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_postgres.connection import deadline, transaction
from pasar_postgres.limits import (
    FETCH_BATCH_ROWS,
    MAX_PARAMS,
    MAX_ROWS,
    MAX_SQL_CHARS,
    TOOL_TIMEOUT_S,
    limits_from_settings,
)
from pasar_postgres.sqltext import check_read_statement, check_write_statement
from pasar_postgres.values import CellBudget, array_element, coerce_params, to_json

MAX_RETURNING_ROWS = 20
_COUNTED_TAG = re.compile(r"^(?:INSERT \d+|UPDATE|DELETE|MERGE|SELECT|COPY|MOVE|FETCH) (\d+)$")


def _sql(args: dict[str, Any]) -> str:
    sql = args["sql"]
    if "\x00" in sql:
        raise ToolError("the SQL text must not contain NUL characters")
    return str(sql)


def _type_name(pg_type: Any) -> str:
    element = array_element(pg_type)
    return str(pg_type.name) if element is None else f"{element}[]"


def unique_names(names: Iterable[str]) -> list[str]:
    """Column names as JSON keys: a repeated name gets a suffix (`id`, `id_2`)."""
    seen: set[str] = set()
    unique: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        unique.append(candidate)
    return unique


def _json_size(row: dict[str, Any]) -> int:
    return len(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()) + 1


async def run_query(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    limits = limits_from_settings(ctx.settings)
    sql = _sql(args)
    check_read_statement(sql)
    max_rows = min(int(args.get("max_rows", limits.max_rows)), limits.max_rows)
    cells = CellBudget()
    rows: list[dict[str, Any]] = []
    truncated_by: str | None = None
    size = 2
    async with deadline(limits), transaction(ctx, limits, read_only=True) as connection:
        statement = await connection.prepare(sql)
        values = coerce_params(statement.get_parameters(), args.get("params") or [])
        attributes = statement.get_attributes()
        names = unique_names(attribute.name for attribute in attributes)
        columns = [
            {"name": name, "type": _type_name(attribute.type)}
            for name, attribute in zip(names, attributes, strict=True)
        ]
        prefetch = max(1, min(FETCH_BATCH_ROWS, max_rows + 1))
        async for record in statement.cursor(*values, prefetch=prefetch):
            if len(rows) >= max_rows:
                truncated_by = "max_rows"
                break
            row = {
                name: to_json(value, cells)
                for name, value in zip(names, record.values(), strict=True)
            }
            row_size = _json_size(row)
            if size + row_size > limits.max_bytes:
                truncated_by = "max_bytes"
                break
            size += row_size
            rows.append(row)
    return {
        "columns": columns,
        "rows": rows,
        "row_count": len(rows),
        "truncated": truncated_by is not None or cells.cut > 0,
        "truncated_by": truncated_by or ("max_cell_chars" if cells.cut else None),
    }


def rows_affected(status: str) -> int | None:
    match = _COUNTED_TAG.match(status)
    return int(match.group(1)) if match else None


async def run_execute(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    limits = limits_from_settings(ctx.settings)
    sql = _sql(args)
    check_write_statement(sql)
    cells = CellBudget()
    async with deadline(limits), transaction(ctx, limits, read_only=False) as connection:
        statement = await connection.prepare(sql)
        values = coerce_params(statement.get_parameters(), args.get("params") or [])
        records = await statement.fetch(*values)
        status = statement.get_statusmsg() or ""
        names = unique_names(attribute.name for attribute in statement.get_attributes())
    returning = [
        {name: to_json(value, cells) for name, value in zip(names, record.values(), strict=True)}
        for record in records[:MAX_RETURNING_ROWS]
    ]
    return {"status": status, "rows_affected": rows_affected(status), "returning": returning}


_SQL = {"type": "string", "minLength": 1, "maxLength": MAX_SQL_CHARS}
_PARAMS = {
    "type": "array",
    "maxItems": MAX_PARAMS,
    "description": "Values for $1, $2, ... in order (JSON; dates and UUIDs as strings).",
}

QUERY = ToolSpec(
    id="postgres:query",
    title="Run a read-only SQL query",
    description=(
        "Run ONE read-only SQL statement (SELECT, WITH, VALUES, TABLE, EXPLAIN or SHOW) on the "
        "agent's PostgreSQL database inside a READ ONLY transaction with a statement timeout. "
        "Pass values as `params` ($1, $2, ...) instead of writing them into the SQL. Rows come "
        f"back as JSON objects, at most `max_rows` (capped by the agent's settings, at most "
        f"{MAX_ROWS}) and a byte budget; `truncated` tells you more rows exist: add "
        "WHERE/ORDER BY/LIMIT. Dates, decimals and UUIDs are strings; bytea is \\x hex."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "sql": {**_SQL, "description": "One SQL statement; no ';'-separated lists."},
            "params": _PARAMS,
            "max_rows": {"type": "integer", "minimum": 1, "maximum": MAX_ROWS},
        },
        "required": ["sql"],
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "required": ["columns", "rows", "row_count", "truncated"],
        "properties": {
            "columns": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "type"],
                    "properties": {"name": {"type": "string"}, "type": {"type": "string"}},
                },
            },
            "rows": {"type": "array", "items": {"type": "object"}},
            "row_count": {"type": "integer", "minimum": 0},
            "truncated": {"type": "boolean"},
            "truncated_by": {"enum": ["max_rows", "max_bytes", "max_cell_chars", None]},
        },
    },
    effect=Effect.READ,
    run=run_query,
    timeout_s=TOOL_TIMEOUT_S,
)

EXECUTE = ToolSpec(
    id="postgres:execute",
    title="Run a SQL statement that writes",
    description=(
        "Run ONE SQL statement that changes the agent's PostgreSQL database (INSERT, UPDATE, "
        "DELETE, MERGE, CREATE, ALTER, DROP, ...) in its own transaction, committed when it "
        "succeeds. Pass values as `params` ($1, $2, ...). Returns the command status, the "
        f"number of rows affected and up to {MAX_RETURNING_ROWS} RETURNING rows. Prefer "
        "postgres:query for reading."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "sql": {**_SQL, "description": "One SQL statement; no ';'-separated lists."},
            "params": _PARAMS,
        },
        "required": ["sql"],
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "required": ["status", "rows_affected"],
        "properties": {
            "status": {"type": "string"},
            "rows_affected": {"type": ["integer", "null"]},
            "returning": {"type": "array", "items": {"type": "object"}},
        },
    },
    effect=Effect.DESTRUCTIVE,
    run=run_execute,
    timeout_s=TOOL_TIMEOUT_S,
)
