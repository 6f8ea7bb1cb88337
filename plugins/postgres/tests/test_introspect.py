from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pasar_core.errors import ToolError, ToolInputInvalid
from pasar_core.registry import Registry
from pasar_core.specs import ToolContext

from .conftest import OPERATOR, ORDERS


async def describe(registry: Registry, ctx: ToolContext, **args: Any) -> Any:
    return await registry.invoke("postgres:describe_table", ctx, args)


@pytest.mark.anyio
async def test_list_tables_of_every_user_schema(registry: Registry, ctx: ToolContext) -> None:
    result = await registry.invoke("postgres:list_tables", ctx, {})
    found = {(t["schema"], t["name"]): t for t in result["tables"]}
    assert result["truncated"] is False
    assert found["public", "orders"]["kind"] == "table"
    assert found["public", "orders"]["estimated_rows"] == ORDERS
    assert found["public", "customers"]["comment"] == "People who buy things"
    assert found["public", "order_totals"] == {
        "schema": "public", "name": "order_totals", "kind": "view",
        "estimated_rows": None, "comment": None,
    }  # fmt: skip
    assert found["public", "vip_customers"]["kind"] == "materialized_view"
    assert ("sales", "Weird Name") in found
    assert not any(schema in ("pg_catalog", "information_schema") for schema, _ in found)


@pytest.mark.anyio
async def test_list_tables_of_one_schema(registry: Registry, ctx: ToolContext) -> None:
    result = await registry.invoke("postgres:list_tables", ctx, {"schema": "sales"})
    assert [t["name"] for t in result["tables"]] == ["Weird Name", "customers"]
    empty = await registry.invoke("postgres:list_tables", ctx, {"schema": "no'such\"schema"})
    assert empty == {"tables": [], "truncated": False}


@pytest.mark.anyio
async def test_describe_columns_keys_and_indexes(registry: Registry, ctx: ToolContext) -> None:
    result = await describe(registry, ctx, table="order_items")
    assert (result["schema"], result["kind"]) == ("public", "table")
    assert [c["name"] for c in result["columns"]] == ["order_id", "line", "product_id", "quantity"]
    assert result["columns"][0] == {
        "name": "order_id", "type": "bigint", "nullable": False, "default": None,
        "identity": None, "generated": False, "comment": None,
    }  # fmt: skip
    assert result["primary_key"] == ["order_id", "line"]
    fks = {fk["name"]: fk for fk in result["foreign_keys"]}
    assert fks["order_items_order_id_fkey"]["references"] == {
        "schema": "public", "table": "orders", "columns": ["id"]
    }  # fmt: skip
    assert fks["order_items_order_id_fkey"]["on_delete"] == "CASCADE"
    assert fks["order_items_product_id_fkey"]["on_delete"] == "NO ACTION"
    assert [i["name"] for i in result["indexes"]] == ["order_items_pkey"]


@pytest.mark.anyio
async def test_describe_types_defaults_uniques_and_incoming_keys(
    registry: Registry, ctx: ToolContext
) -> None:
    customers = await describe(registry, ctx, table="customers", schema="public")
    columns = {c["name"]: c for c in customers["columns"]}
    assert columns["tags"]["type"] == "text[]"
    assert columns["tags"]["default"] == "'{}'::text[]"
    assert columns["profile"]["nullable"] is True
    assert columns["email"]["comment"] == "Login e-mail"
    assert customers["unique_constraints"] == [
        {"name": "customers_email_key", "columns": ["email"]}
    ]
    assert [(r["table"], r["columns"]) for r in customers["referenced_by"]] == [
        ("orders", ["customer_id"])
    ]
    products = await describe(registry, ctx, table="products")
    columns = {c["name"]: c for c in products["columns"]}
    assert columns["id"]["identity"] == "always"
    assert columns["price"]["type"] == "numeric(10,2)"
    assert columns["title"]["type"] == "character varying(200)"
    orders = await describe(registry, ctx, table="orders")
    partial = next(i for i in orders["indexes"] if i["name"] == "orders_open_idx")
    assert "WHERE" in partial["definition"]
    view = await describe(registry, ctx, table="order_totals")
    assert view["kind"] == "view"
    assert view["primary_key"] is None
    assert [c["name"] for c in view["columns"]] == ["order_id", "customer_id", "total"]


@pytest.mark.anyio
async def test_describe_resolves_schemas_and_exact_names(
    registry: Registry, ctx: ToolContext
) -> None:
    # `customers` is in public and sales: the default schema (public) wins without `schema`
    assert (await describe(registry, ctx, table="customers"))["schema"] == "public"
    sales = await describe(registry, ctx, table="customers", schema="sales")
    assert [c["name"] for c in sales["columns"]] == ["id", "region"]
    picky = dataclasses.replace(ctx, settings={"default_schema": "sales"})
    assert (await describe(registry, picky, table="customers"))["schema"] == "sales"
    weird = await describe(registry, ctx, table="Weird Name")
    assert weird["schema"] == "sales"
    assert [c["name"] for c in weird["columns"]] == ["Mixed Case", "x;y"]
    upper = await describe(registry, ctx, table="Customers")
    assert [c["name"] for c in upper["columns"]] == ["id"]


@pytest.mark.anyio
async def test_describe_unknown_names_are_clean_errors(
    registry: Registry, ctx: ToolContext
) -> None:
    with pytest.raises(ToolError, match=r"no table or view named 'ORDERS'.*public\.orders"):
        await describe(registry, ctx, table="ORDERS")
    with pytest.raises(ToolError, match="no table or view named 'orders' in schema 'sales'"):
        await describe(registry, ctx, table="orders", schema="sales")
    for hostile in ('orders"; DROP TABLE orders; --', "public.orders", "' OR 1=1 --", '"orders"'):
        with pytest.raises(ToolError, match="no table or view named"):
            await describe(registry, ctx, table=hostile)
    with pytest.raises(ToolError, match="1 to 63 bytes"):
        await describe(registry, ctx, table="é" * 40)  # 40 characters, 80 bytes
    with pytest.raises(ToolError, match="NUL"):
        await describe(registry, ctx, table="ord\x00ers")
    with pytest.raises(ToolInputInvalid):
        await describe(registry, ctx, table="")


_CTX = ToolContext(user_id="hypothesis", storage_root=Path(tempfile.gettempdir()), extras=OPERATOR)
_NAMES = st.sampled_from(
    ["orders", "customers", "Customers", "Weird Name", "sales", "public", "pg_class",
     "pg_catalog", "information_schema", "x;y", 'a"b', "a'b", "\\", "%", "_"]
)  # fmt: skip
_IDENTIFIERS = _NAMES | st.text(max_size=70) | st.text(alphabet="\"'; -_%\\.\x00aé", max_size=20)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(table=_IDENTIFIERS, schema=st.none() | _IDENTIFIERS)
def test_describe_any_identifier_is_a_result_or_a_clean_error(
    registry: Registry, shop_url: str, table: str, schema: str | None
) -> None:
    ctx = dataclasses.replace(_CTX, secrets={"postgres_dsn": shop_url})
    args: dict[str, Any] = (
        {"table": table} if schema is None else {"table": table, "schema": schema}
    )

    async def run() -> None:
        try:
            result = await registry.invoke("postgres:describe_table", ctx, args)
        except (ToolError, ToolInputInvalid) as error:
            assert "PostgreSQL error" not in error.message, error.message
        else:
            assert result["name"] == table
            assert schema is None or result["schema"] == schema

    asyncio.run(run())
