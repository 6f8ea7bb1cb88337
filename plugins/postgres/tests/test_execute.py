from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg
import pytest
from pasar_core.errors import ToolError, ToolTimeout
from pasar_core.registry import Registry
from pasar_core.specs import ToolContext
from pasar_postgres.query import rows_affected

pytestmark = pytest.mark.anyio


async def execute(registry: Registry, ctx: ToolContext, sql: str, **args: Any) -> Any:
    return await registry.invoke("postgres:execute", ctx, {"sql": sql, **args})


async def scalar(url: str, sql: str) -> Any:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


async def test_execute_writes_and_commits(
    registry: Registry, scratch_ctx: ToolContext, scratch_url: str
) -> None:
    inserted = await execute(
        registry, scratch_ctx,
        "INSERT INTO customers (email, name, signed_up, tags, profile) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id, email, profile",
        params=["new@example.com", "New", "2025-05-01", ["a", "b"], {"k": [1]}],
    )  # fmt: skip
    assert inserted["status"] == "INSERT 0 1"
    assert inserted["rows_affected"] == 1
    assert inserted["returning"] == [{"id": 101, "email": "new@example.com", "profile": {"k": [1]}}]
    assert await scalar(scratch_url, "SELECT name FROM customers WHERE id = 101") == "New"
    updated = await execute(
        registry, scratch_ctx, "UPDATE orders SET note = NULL WHERE id <= $1", params=[10]
    )
    assert (updated["status"], updated["rows_affected"], updated["returning"]) == (
        "UPDATE 10",
        10,
        [],
    )
    deleted = await execute(registry, scratch_ctx, "DELETE FROM customers WHERE id = 1")
    assert deleted["rows_affected"] == 1  # and its orders by ON DELETE CASCADE
    assert await scalar(scratch_url, "SELECT count(*) FROM orders WHERE customer_id = 1") == 0
    created = await execute(
        registry, scratch_ctx, "CREATE TABLE notes (id int PRIMARY KEY, body text)"
    )
    assert created == {"status": "CREATE TABLE", "rows_affected": None, "returning": []}
    listed = await registry.invoke("postgres:list_tables", scratch_ctx, {"schema": "public"})
    assert "notes" in {t["name"] for t in listed["tables"]}
    dropped = await execute(registry, scratch_ctx, "DROP TABLE notes;")
    assert dropped["status"] == "DROP TABLE"


async def test_a_failed_statement_changes_nothing(
    registry: Registry, scratch_ctx: ToolContext, scratch_url: str
) -> None:
    with pytest.raises(ToolError, match=r"23503.*violates foreign key"):
        await execute(registry, scratch_ctx, "UPDATE orders SET customer_id = customer_id + 1000")
    with pytest.raises(ToolError, match=r"23505.*duplicate key"):
        await execute(
            registry,
            scratch_ctx,
            "INSERT INTO customers (email, name) VALUES ('c1@example.com', 'dup')",
        )
    assert await scalar(scratch_url, "SELECT max(customer_id) FROM orders") == 100


@pytest.mark.parametrize(
    ("sql", "match"),
    [
        ("DELETE FROM orders; DROP TABLE customers", "one statement per call"),
        ("UPDATE orders SET note = 'x' WHERE id = 1; SELECT 1", "one statement per call"),
        ("COPY orders TO PROGRAM 'touch /tmp/pasar-postgres-pwned'", "does not run COPY"),
        ("COPY orders FROM '/etc/passwd'", "does not run COPY"),
        ("BEGIN", "does not run BEGIN"),
        ("ALTER SYSTEM SET work_mem = '1GB'", "ALTER SYSTEM"),
        ("SELECT dblink_exec('host=elsewhere', 'DROP TABLE x')", "does not call dblink_exec"),
        ("SELECT lo_import('/etc/passwd')", "does not call lo_import"),
        (
            "INSERT INTO customers (email, name) SELECT pg_read_file('/etc/passwd'), 'x'",
            "pg_read_file",
        ),
    ],
)
async def test_execute_refuses(
    registry: Registry, scratch_ctx: ToolContext, scratch_url: str, sql: str, match: str
) -> None:
    with pytest.raises(ToolError, match=match):
        await execute(registry, scratch_ctx, sql)
    assert await scalar(scratch_url, "SELECT count(*) FROM orders") == 1000
    assert await scalar(scratch_url, "SELECT count(*) FROM customers") == 100


async def test_execute_has_a_statement_timeout(
    registry: Registry, scratch_ctx: ToolContext, scratch_url: str
) -> None:
    fast = dataclasses.replace(scratch_ctx, settings={"statement_timeout_ms": 300})
    with pytest.raises(ToolTimeout, match="statement timeout of 300 ms") as caught:
        await execute(
            registry, fast, "UPDATE orders SET note = 'slow' WHERE pg_sleep(0.01) IS NOT NULL"
        )
    assert caught.value.details == {"sqlstate": "57014"}  # the server cancelled it, not we
    assert await scalar(scratch_url, "SELECT count(*) FROM orders WHERE note = 'slow'") == 0


async def test_statements_that_cannot_run_in_a_transaction_say_so(
    registry: Registry, scratch_ctx: ToolContext
) -> None:
    with pytest.raises(ToolError, match="cannot run inside a transaction block"):
        await execute(registry, scratch_ctx, "VACUUM orders")


def test_rows_affected_reads_the_command_tag() -> None:
    assert rows_affected("INSERT 0 12") == 12
    assert rows_affected("UPDATE 3") == 3
    assert rows_affected("DELETE 0") == 0
    assert rows_affected("MERGE 4") == 4
    assert rows_affected("SELECT 7") == 7
    assert rows_affected("CREATE TABLE") is None
    assert rows_affected("") is None
