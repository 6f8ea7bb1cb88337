from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from pasar_core.errors import ToolError, ToolInputInvalid
from pasar_core.registry import Registry
from pasar_core.specs import ToolContext
from pasar_postgres.limits import MAX_CELL_CHARS

pytestmark = pytest.mark.anyio


async def query(registry: Registry, ctx: ToolContext, sql: str, **args: Any) -> Any:
    return await registry.invoke("postgres:query", ctx, {"sql": sql, **args})


async def test_rows_are_json_objects_with_typed_columns(
    registry: Registry, ctx: ToolContext
) -> None:
    result = await query(
        registry, ctx,
        "SELECT id, email, signed_up, tags, profile, vip FROM customers WHERE id <= $1 ORDER BY id",
        params=[2],
    )  # fmt: skip
    assert result["columns"] == [
        {"name": "id", "type": "int4"},
        {"name": "email", "type": "text"},
        {"name": "signed_up", "type": "date"},
        {"name": "tags", "type": "text[]"},
        {"name": "profile", "type": "jsonb"},
        {"name": "vip", "type": "bool"},
    ]
    assert result["rows"][0] == {
        "id": 1, "email": "c1@example.com", "signed_up": "2024-01-02", "tags": ["t1"],
        "profile": {"age": 21, "city": "Bandung"}, "vip": False,
    }  # fmt: skip
    assert (result["row_count"], result["truncated"], result["truncated_by"]) == (2, False, None)


async def test_values_of_many_types_are_json_safe(registry: Registry, ctx: ToolContext) -> None:
    sql = """
    SELECT 12.50::numeric AS price, 'NaN'::numeric AS nan_numeric, 'Infinity'::float8 AS inf,
           1.5::float4 AS f4, 9007199254740993::bigint AS big,
           '2024-02-29 10:30:00+07'::timestamptz AS at, '2024-02-29 10:30'::timestamp AS local,
           '10:30:01.5'::time AS t, '1 day 02:03:04.5'::interval AS span,
           '-3 hours'::interval AS back, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id,
           '\\xdeadbeef'::bytea AS blob, ARRAY[1, 2, NULL]::int[] AS ints,
           ARRAY[['a', 'b'], ['c', 'd']] AS grid, '{"a": [1, {"b": null}]}'::json AS doc,
           '192.168.0.1/24'::inet AS ip, int4range(1, 5) AS r, ROW(1, 'x') AS rec,
           (SELECT i FROM order_items i ORDER BY order_id, line LIMIT 1) AS item, point(1, 2) AS p,
           'paid'::order_status AS status, B'101' AS bits, NULL::text AS nothing,
           true AS yes, 'ünïcødé ✓'::text AS text
    """
    result = await query(registry, ctx, sql)
    row = result["rows"][0]
    assert row == {
        "price": "12.50", "nan_numeric": "NaN", "inf": "inf", "f4": 1.5,
        "big": 9007199254740993, "at": "2024-02-29T03:30:00+00:00",
        "local": "2024-02-29T10:30:00", "t": "10:30:01.500000", "span": "P1DT2H3M4.5S",
        "back": "-P0DT3H", "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "blob": "\\xdeadbeef",
        "ints": [1, 2, None], "grid": [["a", "b"], ["c", "d"]], "doc": {"a": [1, {"b": None}]},
        "ip": "192.168.0.1/24",
        "r": {"lower": 1, "upper": 5, "lower_inc": True, "upper_inc": False, "empty": False},
        "rec": [1, "x"], "p": [1.0, 2.0],
        "item": {"order_id": 1, "line": 1, "product_id": 2, "quantity": 2}, "status": "paid", "bits": "101", "nothing": None,
        "yes": True, "text": "ünïcødé ✓",
    }  # fmt: skip
    json.dumps(result, allow_nan=False)  # strictly JSON
    types = {c["name"]: c["type"] for c in result["columns"]}
    assert (types["price"], types["id"], types["ints"]) == ("numeric", "uuid", "int4[]")


async def test_params_are_coerced_from_json(registry: Registry, ctx: ToolContext) -> None:
    result = await query(
        registry, ctx,
        "SELECT count(*) AS n FROM orders WHERE placed_at >= $1 AND customer_id = ANY($2)"
        " AND status = ANY($3::order_status[]) AND $4::uuid IS NOT NULL AND $5::date < $6::date"
        " AND $7::numeric > 1 AND $8::jsonb ? 'k' AND $9::bool AND $10::text = '7'",
        params=["2024-03-10T00:00:00Z", [1, 2, 3], ["paid", "new"],
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "2024-01-01", "2024-12-31", "1.5",
                {"k": 1}, "true", 7],
    )  # fmt: skip
    assert result["rows"][0]["n"] > 0
    with pytest.raises(ToolError, match=r"parameter \$1: cannot use \"soon\" as date"):
        await query(registry, ctx, "SELECT $1::date", params=["soon"])
    with pytest.raises(ToolError, match=r"has 1 parameter\(s\) \(\$1..\$1\) but 0 value"):
        await query(registry, ctx, "SELECT $1::int")
    with pytest.raises(ToolError, match=r"has 0 parameter\(s\) \(none\) but 1 value"):
        await query(registry, ctx, "SELECT 1", params=[1])
    with pytest.raises(ToolError, match=r"an array needs a JSON list"):
        await query(registry, ctx, "SELECT $1::int[]", params=[5])


async def test_row_cap_and_max_rows(registry: Registry, ctx: ToolContext) -> None:
    result = await query(registry, ctx, "SELECT id FROM orders ORDER BY id")
    assert result["row_count"] == 200  # the default cap
    assert (result["truncated"], result["truncated_by"]) == (True, "max_rows")
    small = await query(registry, ctx, "SELECT id FROM orders ORDER BY id", max_rows=3)
    assert [r["id"] for r in small["rows"]] == [1, 2, 3]
    exact = await query(registry, ctx, "SELECT id FROM orders WHERE id <= 3", max_rows=3)
    assert exact["truncated"] is False
    capped = dataclasses.replace(ctx, settings={"max_rows": 10})
    assert (await query(registry, capped, "TABLE orders", max_rows=500))["row_count"] == 10
    with pytest.raises(ToolInputInvalid):
        await query(registry, ctx, "SELECT 1", max_rows=0)


async def test_byte_cap_and_cell_cap(registry: Registry, ctx: ToolContext) -> None:
    tight = dataclasses.replace(ctx, settings={"max_bytes": 4096})
    result = await query(registry, tight, "SELECT id, note FROM orders ORDER BY id")
    assert result["truncated_by"] == "max_bytes"
    assert 0 < result["row_count"] < 20
    assert len(json.dumps(result["rows"], separators=(",", ":")).encode()) <= 4096
    huge = await query(registry, ctx, "SELECT repeat('x', 100000) AS big, 'small' AS s")
    cell = huge["rows"][0]["big"]
    assert cell.startswith("x" * MAX_CELL_CHARS)
    assert cell.endswith("more characters]")
    assert (huge["truncated"], huge["truncated_by"]) == (True, "max_cell_chars")


async def test_duplicate_column_names_get_suffixes(registry: Registry, ctx: ToolContext) -> None:
    result = await query(
        registry, ctx, "SELECT o.id, c.id, 1 AS id_2 FROM orders o JOIN customers c "
        "ON c.id = o.customer_id ORDER BY o.id LIMIT 1"
    )  # fmt: skip
    assert [c["name"] for c in result["columns"]] == ["id", "id_2", "id_2_2"]
    assert result["rows"] == [{"id": 1, "id_2": 2, "id_2_2": 1}]


async def test_other_read_statements(registry: Registry, ctx: ToolContext) -> None:
    explain = await query(registry, ctx, "EXPLAIN SELECT * FROM orders WHERE customer_id = 3")
    assert "QUERY PLAN" in explain["rows"][0]
    show = await query(registry, ctx, "SHOW statement_timeout")
    assert show["rows"] == [{"statement_timeout": "10s"}]
    assert (await query(registry, ctx, "SHOW transaction_read_only"))["rows"] == [
        {"transaction_read_only": "on"}
    ]
    name = await query(registry, ctx, "SELECT current_setting('application_name') AS a")
    assert name["rows"] == [{"a": "pasar"}]
    values = await query(registry, ctx, "VALUES (1, 'a'), (2, 'b');")
    assert values["rows"] == [{"column1": 1, "column2": "a"}, {"column1": 2, "column2": "b"}]
    cte = await query(
        registry, ctx, "WITH t AS (SELECT sum(total) AS s FROM order_totals) SELECT s > 0 AS ok FROM t"
    )  # fmt: skip
    assert cte["rows"] == [{"ok": True}]
    literal = await query(registry, ctx, "SELECT 'a;b' AS s, $$x; DROP TABLE t$$ AS d -- ;")
    assert literal["rows"] == [{"s": "a;b", "d": "x; DROP TABLE t"}]


async def test_sql_errors_are_tool_errors(registry: Registry, ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match=r"42P01.*no_such_table"):
        await query(registry, ctx, "SELECT * FROM no_such_table")
    with pytest.raises(ToolError, match=r"42601.*syntax error.*at character"):
        await query(registry, ctx, "SELECT FROM WHERE")
    with pytest.raises(ToolError, match="22012"):
        await query(registry, ctx, "SELECT 1 / 0")
