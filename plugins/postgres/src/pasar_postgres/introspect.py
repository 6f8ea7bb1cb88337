"""postgres:list_tables and postgres:describe_table: catalog queries with names as parameters."""

from __future__ import annotations

from typing import Any

from pasar_core.errors import ToolError
from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_postgres.connection import deadline, transaction
from pasar_postgres.limits import (
    MAX_IDENTIFIER_BYTES,
    MAX_LISTED_RELATIONS,
    SYSTEM_SCHEMAS,
    TOOL_TIMEOUT_S,
    limits_from_settings,
)

KINDS = {
    "r": "table",
    "p": "partitioned_table",
    "v": "view",
    "m": "materialized_view",
    "f": "foreign_table",
}
FK_ACTIONS = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}

# Every name is compared as text ($n::text), never cast to `name`, which would silently truncate
# it to 63 bytes and could match another relation.
_LIST = """
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
       CASE WHEN c.relkind IN ('r', 'p', 'm', 'f') AND c.reltuples >= 0
            THEN c.reltuples::bigint END AS estimated_rows,
       obj_description(c.oid, 'pg_class') AS comment
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
  AND CASE WHEN $1::text IS NULL
           THEN n.nspname::text <> ALL($2::text[]) AND n.nspname::text NOT LIKE 'pg\\_%temp\\_%'
           ELSE n.nspname::text = $1::text END
ORDER BY n.nspname, c.relname
LIMIT $3
"""

_FIND = """
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
       CASE WHEN c.relkind IN ('r', 'p', 'm', 'f') AND c.reltuples >= 0
            THEN c.reltuples::bigint END AS estimated_rows,
       obj_description(c.oid, 'pg_class') AS comment
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND lower(c.relname::text) = lower($1::text)
  AND CASE WHEN $2::text IS NULL THEN n.nspname::text <> ALL($3::text[])
           ELSE n.nspname::text = $2::text END
ORDER BY c.relname::text = $1::text DESC, n.nspname, c.relname
LIMIT 20
"""

_COLUMNS = """
SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       NOT a.attnotnull AS nullable, pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default,
       a.attidentity::text AS identity, a.attgenerated::text AS generated,
       pg_catalog.col_description(a.attrelid, a.attnum) AS comment
FROM pg_catalog.pg_attribute a
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_CONSTRAINTS = """
SELECT con.conname AS name, con.contype::text AS type, con.conrelid = $1 AS own,
       con.confrelid = $1 AS incoming,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
             ORDER BY k.ord) AS columns,
       fn.nspname AS ref_schema, fc.relname AS ref_table,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
             ORDER BY k.ord) AS ref_columns,
       con.confupdtype::text AS on_update, con.confdeltype::text AS on_delete,
       sn.nspname AS src_schema, sc.relname AS src_table
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class sc ON sc.oid = con.conrelid
JOIN pg_catalog.pg_namespace sn ON sn.oid = sc.relnamespace
LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
WHERE (con.conrelid = $1 AND con.contype IN ('p', 'f', 'u'))
   OR (con.confrelid = $1 AND con.contype = 'f')
ORDER BY con.contype, con.conname
"""

_INDEXES = """
SELECT ic.relname AS name, pg_catalog.pg_get_indexdef(i.indexrelid) AS definition,
       i.indisunique AS "unique", i.indisprimary AS "primary"
FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = $1
ORDER BY ic.relname
"""

_NAME = {"type": "string", "minLength": 1, "maxLength": MAX_IDENTIFIER_BYTES}
_NULLABLE_STRING = {"type": ["string", "null"]}
_RELATION: dict[str, Any] = {
    "type": "object",
    "required": ["schema", "name", "kind", "estimated_rows"],
    "properties": {
        "schema": {"type": "string"},
        "name": {"type": "string"},
        "kind": {"enum": sorted(KINDS.values())},
        "estimated_rows": {"type": ["integer", "null"]},
        "comment": _NULLABLE_STRING,
    },
}


def check_identifier(value: str, what: str) -> str:
    """A name PostgreSQL can hold: 1-63 UTF-8 bytes, no NUL. Never spliced into SQL."""
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ToolError(f"{what} {value[:40]!r} is not valid text") from None
    if "\x00" in value:
        raise ToolError(f"{what} must not contain NUL characters")
    if not 1 <= size <= MAX_IDENTIFIER_BYTES:
        raise ToolError(f"{what} must be 1 to {MAX_IDENTIFIER_BYTES} bytes long (got {size})")
    return value


def _relation(row: Any) -> dict[str, Any]:
    return {
        "schema": row["schema"],
        "name": row["name"],
        "kind": KINDS[row["kind"]],
        "estimated_rows": row["estimated_rows"],
        "comment": row["comment"],
    }


async def list_tables(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    limits = limits_from_settings(ctx.settings)
    schema = args.get("schema")
    if schema is not None:
        check_identifier(schema, "schema")
    async with deadline(limits), transaction(ctx, limits, read_only=True) as connection:
        rows = await connection.fetch(_LIST, schema, list(SYSTEM_SCHEMAS), MAX_LISTED_RELATIONS + 1)
    tables = [_relation(row) for row in rows[:MAX_LISTED_RELATIONS]]
    return {"tables": tables, "truncated": len(rows) > MAX_LISTED_RELATIONS}


def _pick(matches: list[Any], table: str, schema: str | None, default_schema: str) -> Any:
    exact = [row for row in matches if row["name"] == table]
    if schema is None and len(exact) > 1:
        preferred = [row for row in exact if row["schema"] == default_schema]
        if len(preferred) == 1:
            return preferred[0]
        where = ", ".join(f"{row['schema']}.{row['name']}" for row in exact)
        raise ToolError(f"{table!r} exists in several schemas ({where}); pass schema")
    if exact:
        return exact[0]
    where = f"schema {schema!r}" if schema is not None else "any schema you can see"
    hint = ""
    if matches:
        names = ", ".join(f"{row['schema']}.{row['name']}" for row in matches[:5])
        hint = f"; names differ only in case: {names} (names are case-sensitive)"
    raise ToolError(f"no table or view named {table!r} in {where}{hint}")


async def describe_table(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    limits = limits_from_settings(ctx.settings)
    table = check_identifier(args["table"], "table")
    schema = args.get("schema")
    if schema is not None:
        check_identifier(schema, "schema")
    async with deadline(limits), transaction(ctx, limits, read_only=True) as connection:
        matches = await connection.fetch(_FIND, table, schema, list(SYSTEM_SCHEMAS))
        found = _pick(list(matches), table, schema, limits.default_schema)
        oid = found["oid"]
        columns = await connection.fetch(_COLUMNS, oid)
        constraints = await connection.fetch(_CONSTRAINTS, oid)
        indexes = await connection.fetch(_INDEXES, oid)
    own = [row for row in constraints if row["own"]]
    primary = next((row["columns"] for row in own if row["type"] == "p"), None)
    return {
        **_relation(found),
        "columns": [
            {
                "name": row["name"],
                "type": row["type"],
                "nullable": row["nullable"],
                "default": row["default"],
                "identity": {"a": "always", "d": "by default"}.get(row["identity"]),
                "generated": row["generated"] == "s",
                "comment": row["comment"],
            }
            for row in columns
        ],
        "primary_key": primary,
        "unique_constraints": [
            {"name": row["name"], "columns": row["columns"]} for row in own if row["type"] == "u"
        ],
        "foreign_keys": [_foreign_key(row) for row in own if row["type"] == "f"],
        "referenced_by": [
            {
                "name": row["name"],
                "schema": row["src_schema"],
                "table": row["src_table"],
                "columns": row["columns"],
                "references_columns": row["ref_columns"],
            }
            for row in constraints
            if row["type"] == "f" and row["incoming"]
        ],
        "indexes": [
            {
                "name": row["name"],
                "definition": row["definition"],
                "unique": row["unique"],
                "primary": row["primary"],
            }
            for row in indexes
        ],
    }


def _foreign_key(row: Any) -> dict[str, Any]:
    return {
        "name": row["name"],
        "columns": row["columns"],
        "references": {
            "schema": row["ref_schema"],
            "table": row["ref_table"],
            "columns": row["ref_columns"],
        },
        "on_update": FK_ACTIONS.get(row["on_update"], "NO ACTION"),
        "on_delete": FK_ACTIONS.get(row["on_delete"], "NO ACTION"),
    }


_STRINGS = {"type": "array", "items": {"type": "string"}}

LIST_TABLES = ToolSpec(
    id="postgres:list_tables",
    title="List tables",
    description=(
        "List the tables, views, materialized views and foreign tables of the agent's PostgreSQL "
        "database with their schema, kind and estimated row count. Give `schema` to list one "
        f"schema; otherwise every non-system schema (at most {MAX_LISTED_RELATIONS} entries)."
    ),
    input_schema={
        "type": "object",
        "properties": {"schema": {**_NAME, "description": "Only this schema (exact name)."}},
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "required": ["tables", "truncated"],
        "properties": {
            "tables": {"type": "array", "items": _RELATION},
            "truncated": {"type": "boolean"},
        },
    },
    effect=Effect.READ,
    run=list_tables,
    timeout_s=TOOL_TIMEOUT_S,
)

DESCRIBE_TABLE = ToolSpec(
    id="postgres:describe_table",
    title="Describe a table",
    description=(
        "Describe one table or view: columns (name, type, nullable, default), primary key, "
        "unique constraints, foreign keys (both directions) and indexes. Names are exact and "
        "case-sensitive, without quotes. Without `schema`, the table is looked up in every "
        "non-system schema (the default schema wins a tie)."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "table": {**_NAME, "description": "Table or view name, unquoted."},
            "schema": {**_NAME, "description": "Schema name, unquoted."},
        },
        "required": ["table"],
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "required": [*_RELATION["required"], "columns", "primary_key", "foreign_keys", "indexes"],
        "properties": {
            **_RELATION["properties"],
            "columns": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "type", "nullable", "default"],
                    "properties": {
                        "name": {"type": "string"},
                        "type": {"type": "string"},
                        "nullable": {"type": "boolean"},
                        "default": _NULLABLE_STRING,
                    },
                },
            },
            "primary_key": {"anyOf": [_STRINGS, {"type": "null"}]},
            "unique_constraints": {"type": "array"},
            "foreign_keys": {"type": "array"},
            "referenced_by": {"type": "array"},
            "indexes": {"type": "array"},
        },
    },
    effect=Effect.READ,
    run=describe_table,
    timeout_s=TOOL_TIMEOUT_S,
)
