"""What a model (or a prompt injection) might try through postgres:query."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from pasar_core.errors import ToolError, ToolTimeout
from pasar_core.registry import Registry
from pasar_core.specs import ToolContext
from pasar_postgres.connection import transaction
from pasar_postgres.limits import Limits

from .conftest import fetch_counts

pytestmark = pytest.mark.anyio

PWNED = Path("/tmp/pasar-postgres-pwned")


@pytest.fixture
async def unchanged(shop_url: str) -> Any:
    """Asserts the shared database has the same rows and tables after the test."""
    before = await fetch_counts(shop_url)
    yield
    assert await fetch_counts(shop_url) == before
    assert not PWNED.exists()


async def query(registry: Registry, ctx: ToolContext, sql: str, **args: Any) -> Any:
    return await registry.invoke("postgres:query", ctx, {"sql": sql, **args})


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO customers (email, name) VALUES ('evil@example.com', 'evil')",
        "UPDATE customers SET name = 'owned'",
        "DELETE FROM order_items",
        "DROP TABLE order_items",
        "CREATE TABLE loot (x int)",
        "TRUNCATE orders CASCADE",
        "ALTER TABLE customers ADD COLUMN owned int",
        "GRANT ALL ON customers TO PUBLIC",
        "MERGE INTO products p USING products q ON p.id = q.id WHEN MATCHED THEN DELETE",
        f"COPY (SELECT 1) TO PROGRAM 'touch {PWNED}'",
        "COPY customers TO '/tmp/pasar-postgres-dump'",
        "SET ROLE NONE",
        "SET SESSION AUTHORIZATION DEFAULT",
        "SET statement_timeout = 0",
        "RESET ALL",
        "DO $$ BEGIN DELETE FROM order_items; END $$",
        "CALL nothing()",
        "VACUUM orders",
        "BEGIN",
        "COMMIT",
        "  /* comment */ -- line\n  delete FROM order_items",
        "LOCK TABLE orders",
        "NOTIFY ch",
        "PREPARE p AS DELETE FROM orders",
        "REFRESH MATERIALIZED VIEW vip_customers",
    ],
)
async def test_statements_that_are_not_reads_are_refused(
    registry: Registry, ctx: ToolContext, sql: str
) -> None:
    with pytest.raises(ToolError, match=r"only runs read-only statements.*postgres:execute"):
        await query(registry, ctx, sql)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "sql",
    [
        "WITH gone AS (DELETE FROM order_items RETURNING 1) SELECT count(*) FROM gone",
        "WITH t AS (UPDATE customers SET name = 'x' RETURNING id) SELECT * FROM t",
        "WITH t AS (INSERT INTO customers (email, name) VALUES ('a@b', 'a') RETURNING id) TABLE t",
        "SELECT sneaky_write()",  # a function that writes: stopped by READ ONLY, not by the lexer
        "SELECT nextval('customers_id_seq')",
        "SELECT * INTO TABLE loot FROM customers",
        "SELECT * FROM customers FOR UPDATE",
        "EXPLAIN ANALYZE DELETE FROM order_items",
    ],
)
async def test_writes_hidden_in_reads_fail_at_the_database(
    registry: Registry, ctx: ToolContext, sql: str
) -> None:
    with pytest.raises(ToolError, match=r"READ ONLY transaction.*(read-only|FOR UPDATE).*execute"):
        await query(registry, ctx, sql)


@pytest.mark.usefixtures("unchanged")
async def test_read_only_holds_without_the_lexer(ctx: ToolContext) -> None:
    """Defense in depth: the transaction itself refuses writes the lexer would have caught."""
    for sql in ("DELETE FROM order_items", "CREATE TABLE loot (x int)", "DROP TABLE orders",
                "SET TRANSACTION READ WRITE", "SELECT set_config('transaction_read_only', 'off', true)"):  # fmt: skip
        with pytest.raises(
            ToolError, match=r"read-only|READ ONLY|read-write|transaction_read_only"
        ):
            async with transaction(ctx, Limits(), read_only=True) as connection:
                await connection.execute(sql)
    with pytest.raises(ToolError, match="cannot insert multiple commands"):
        async with transaction(ctx, Limits(), read_only=True) as connection:
            await connection.prepare("SELECT 1; DELETE FROM order_items")


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
        "SELECT pg_cancel_backend(1)",
        'SELECT "pg_catalog"."pg_terminate_backend"(1)',
        "SELECT PG_TERMINATE_BACKEND /* hi */ (1)",
        "SELECT set_config('role', 'postgres', false)",
        "SELECT set_config('statement_timeout', '0', false), pg_sleep(60)",
        "SELECT lo_import('/etc/passwd')",
        "SELECT lo_export(1, '/tmp/pasar-postgres-out')",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT pg_ls_dir('.')",
        "SELECT * FROM dblink('host=127.0.0.1', 'DELETE FROM orders') AS t(x text)",
        "SELECT dblink_exec('dbname=x', 'DROP TABLE orders')",
        "SELECT query_to_xml('DELETE FROM order_items RETURNING *', true, true, '')",
        "SELECT pg_reload_conf()",
        "SELECT pg_advisory_lock(1)",
        "SELECT pg_notify('ch', 'x')",
        "SELECT * FROM ts_stat('SELECT to_tsvector(name) FROM customers')",
        'SELECT U&"\\0070g_sleep"(1)',
    ],
)
async def test_functions_that_escape_read_only_are_refused(
    registry: Registry, ctx: ToolContext, sql: str
) -> None:
    with pytest.raises(ToolError, match="refused SQL"):
        await query(registry, ctx, sql)


async def test_names_in_strings_and_columns_are_not_calls(
    registry: Registry, ctx: ToolContext
) -> None:
    result = await query(
        registry, ctx,
        "SELECT 'pg_terminate_backend(1)' AS s, $q$ set_config( $q$ AS d, 1 AS lo_import",
    )  # fmt: skip
    assert result["rows"] == [
        {"s": "pg_terminate_backend(1)", "d": " set_config( ", "lo_import": 1}
    ]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; SELECT 2",
        "SELECT 1; DELETE FROM order_items",
        "SELECT 1;\n-- x\nDROP TABLE orders;",
        "SELECT ';'; DROP TABLE orders",
        "SELECT $$a$$; DROP TABLE orders",
        "SELECT 1 /* ; */ ; DROP TABLE orders",
    ],
)
async def test_multiple_statements_are_refused(
    registry: Registry, ctx: ToolContext, sql: str
) -> None:
    with pytest.raises(ToolError, match="one statement per call"):
        await query(registry, ctx, sql)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT 'open", "unterminated string"),
        ('SELECT "open', "unterminated quoted identifier"),
        ("SELECT $x$ open", "unterminated dollar-quoted"),
        ("SELECT 1 /* open", "unterminated /\\* comment"),
        (";", "no statement"),
        ("  -- only a comment", "no statement"),
    ],
)
async def test_sql_the_lexer_cannot_read_is_refused(
    registry: Registry, ctx: ToolContext, sql: str, reason: str
) -> None:
    with pytest.raises(ToolError, match=reason):
        await query(registry, ctx, sql)


@pytest.fixture
def fast(ctx: ToolContext) -> ToolContext:
    return dataclasses.replace(ctx, settings={"statement_timeout_ms": 500})


async def test_pg_sleep_ends_at_the_statement_timeout(
    registry: Registry, fast: ToolContext
) -> None:
    with pytest.raises(ToolTimeout, match="statement timeout of 500 ms") as caught:
        await query(registry, fast, "SELECT pg_sleep(10)")
    assert caught.value.details == {"sqlstate": "57014"}  # the server cancelled it, not we


async def test_an_expensive_query_ends_at_the_statement_timeout(
    registry: Registry, fast: ToolContext
) -> None:
    with pytest.raises(ToolTimeout, match="statement timeout of 500 ms") as caught:
        await query(registry, fast, "SELECT count(*) FROM orders a, orders b, orders c")
    assert caught.value.details == {"sqlstate": "57014"}


async def test_a_huge_cross_join_is_cut_by_the_caps(registry: Registry, ctx: ToolContext) -> None:
    roomy = dataclasses.replace(ctx, settings={"max_rows": 5000})
    sql = "SELECT a.id, b.id, c.id FROM orders a, orders b, orders c"  # 10^9 rows
    rows = await query(registry, roomy, sql, max_rows=10_000 // 2)
    assert (rows["row_count"], rows["truncated_by"]) == (5000, "max_rows")
    wide = dataclasses.replace(ctx, settings={"max_rows": 5000, "max_bytes": 64 * 1024})
    result = await query(registry, wide, "SELECT * FROM orders a, customers b, order_items c")
    assert result["truncated_by"] == "max_bytes"
    compact = json.dumps(result["rows"], ensure_ascii=False, separators=(",", ":"))
    assert len(compact.encode()) <= 64 * 1024


async def test_a_lock_wait_ends_at_the_lock_timeout(
    registry: Registry, ctx: ToolContext, shop_url: str
) -> None:
    import asyncpg

    holder = await asyncpg.connect(shop_url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(ToolError, match="lock was not granted"):
                await query(registry, ctx, "SELECT count(*) FROM products")
    finally:
        await holder.close()


async def test_strings_are_read_as_the_lexer_reads_them(
    registry: Registry, scratch_ctx: ToolContext, scratch_url: str
) -> None:
    """With standard_conforming_strings off, '\\'' would end a string earlier on the server than
    in our lexer; every call turns it on, so a call hidden in a 'string' stays a string."""
    import asyncpg

    admin = await asyncpg.connect(scratch_url)
    try:
        await admin.execute(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET standard_conforming_strings = off', "
            "current_database()); END $$"
        )
    finally:
        await admin.close()
    # The lexer sees one string, a backslash and an empty string. With the database default
    # (off), the server would see '\'' + a call to pg_terminate_backend + '\''.
    sql = "SELECT '\\'' , pg_terminate_backend(pg_backend_pid()) , '\\'' AS s"
    with pytest.raises(ToolError, match="42601: syntax error at or near"):
        await query(registry, scratch_ctx, sql)
    ok = await query(registry, scratch_ctx, "SELECT 'a\\b' AS s")
    assert ok["rows"] == [{"s": "a\\b"}]


async def test_text_the_database_cannot_take_is_a_clean_error(
    registry: Registry, ctx: ToolContext
) -> None:
    with pytest.raises(ToolError, match="valid UTF-8"):
        await query(registry, ctx, "SELECT '\ud800' AS s")
    with pytest.raises(ToolError, match="NUL"):
        await query(registry, ctx, "SELECT 1\x00")
    with pytest.raises(ToolError, match="22021"):
        await query(registry, ctx, "SELECT $1::text AS s", params=["a\x00b"])
