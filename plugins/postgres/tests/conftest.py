from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from pasar_core.net.guard import ALLOW_BOUND_EXTRA
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import Registry, build_registry
from pasar_core.specs import ToolContext
from pasar_core.testing import TEST_ALLOW_PRIVATE_HOSTS, PostgresForTests

ORDERS = 1000
CUSTOMERS = 100
PRODUCTS = 50
ITEMS = 2000

SEED = f"""
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped', 'cancelled');
CREATE TABLE customers (
    id serial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    signed_up date NOT NULL DEFAULT current_date,
    tags text[] NOT NULL DEFAULT '{{}}',
    profile jsonb,
    vip boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE customers IS 'People who buy things';
COMMENT ON COLUMN customers.email IS 'Login e-mail';
CREATE TABLE products (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku uuid NOT NULL DEFAULT gen_random_uuid(),
    title varchar(200) NOT NULL,
    price numeric(10, 2) NOT NULL CHECK (price >= 0),
    weight_kg double precision,
    thumbnail bytea
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    status order_status NOT NULL DEFAULT 'new',
    placed_at timestamptz NOT NULL,
    ship_window interval,
    client_ip inet,
    note text
);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE INDEX orders_open_idx ON orders (placed_at) WHERE status <> 'cancelled';
CREATE TABLE order_items (
    order_id bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line int NOT NULL,
    product_id int NOT NULL REFERENCES products (id),
    quantity int NOT NULL,
    PRIMARY KEY (order_id, line)
);
CREATE VIEW order_totals AS
    SELECT o.id AS order_id, o.customer_id, sum(i.quantity * p.price) AS total
    FROM orders o JOIN order_items i ON i.order_id = o.id JOIN products p ON p.id = i.product_id
    GROUP BY o.id;
CREATE MATERIALIZED VIEW vip_customers AS SELECT id, email FROM customers WHERE vip;
CREATE SCHEMA sales;
CREATE TABLE sales.customers (id int PRIMARY KEY, region text);
CREATE TABLE sales."Weird Name" ("Mixed Case" text, "x;y" int);
CREATE TABLE "Customers" (id int);
CREATE FUNCTION sneaky_write() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customers (email, name) VALUES ('sneaky@example.com', 'sneaky');
    RETURN 1;
END $$;

INSERT INTO customers (email, name, signed_up, tags, profile, vip)
SELECT 'c' || g || '@example.com', 'Customer ' || g, date '2024-01-01' + g,
       ARRAY['t' || (g % 3)], jsonb_build_object('age', 20 + g % 50, 'city', 'Bandung'), g % 10 = 0
FROM generate_series(1, {CUSTOMERS}) g;
INSERT INTO products (title, price, weight_kg, thumbnail)
SELECT 'Product ' || g, (g * 1.25)::numeric(10, 2), g / 10.0, decode(lpad(to_hex(g), 4, '0'), 'hex')
FROM generate_series(1, {PRODUCTS}) g;
INSERT INTO orders (customer_id, status, placed_at, ship_window, client_ip, note)
SELECT 1 + g % {CUSTOMERS}, (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + g % 4]::order_status,
       timestamptz '2024-03-01 12:00:00+00' + g * interval '1 hour', interval '2 days',
       ('10.0.' || (g % 250) || '.' || (g % 200))::inet, repeat('n', 200)
FROM generate_series(1, {ORDERS}) g;
INSERT INTO order_items (order_id, line, product_id, quantity)
SELECT 1 + (g - 1) / 2, 1 + (g - 1) % 2, 1 + g % {PRODUCTS}, 1 + g % 5
FROM generate_series(1, {ITEMS}) g;
REFRESH MATERIALIZED VIEW vip_customers;
ANALYZE;
"""

COUNTS = "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders), (SELECT count(*) FROM order_items), (SELECT count(*) FROM products), (SELECT count(*) FROM pg_class WHERE relkind = 'r')"


async def _seed(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(SEED)
    finally:
        await connection.close()


async def fetch_counts(url: str) -> tuple[Any, ...]:
    connection = await asyncpg.connect(url)
    try:
        return tuple(await connection.fetchrow(COUNTS))
    finally:
        await connection.close()


def seeded_database(postgres: PostgresForTests) -> tuple[str, str]:
    name = f"pasar_pg_plugin_{uuid.uuid4().hex[:10]}"
    url = postgres.create_database(name)
    asyncio.run(_seed(url))
    return name, url


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


OPERATOR = {ALLOW_BOUND_EXTRA: TEST_ALLOW_PRIVATE_HOSTS}
"""`ctx.extras` as the runner sets them for the test deployment (loopback allowed)."""


@pytest.fixture(scope="session")
def shop_url(pasar_postgres: PostgresForTests) -> Iterator[str]:
    """A seeded database shared by the read-only tests; its teardown fails if any test changed
    it, whichever tests ran."""
    name, url = seeded_database(pasar_postgres)
    seeded = asyncio.run(fetch_counts(url))
    try:
        yield url
        assert asyncio.run(fetch_counts(url)) == seeded, "a test changed the shared database"
    finally:
        pasar_postgres.drop_database(name)


@pytest.fixture
def scratch_url(pasar_postgres: PostgresForTests) -> Iterator[str]:
    """A seeded database of its own, for tests that write."""
    name, url = seeded_database(pasar_postgres)
    try:
        yield url
    finally:
        pasar_postgres.drop_database(name)


@pytest.fixture(scope="session")
def registry() -> Registry:
    return build_registry(build_plugin_manager(enabled=("postgres",)))


@pytest.fixture
def operator_ctx(tool_context: ToolContext) -> ToolContext:
    """A context whose operator allows the loopback test server, without a DSN."""
    return dataclasses.replace(tool_context, extras=OPERATOR)


@pytest.fixture
def ctx(operator_ctx: ToolContext, shop_url: str) -> ToolContext:
    return dataclasses.replace(operator_ctx, agent_id="agent-1", secrets={"postgres_dsn": shop_url})


@pytest.fixture
def scratch_ctx(operator_ctx: ToolContext, scratch_url: str) -> ToolContext:
    return dataclasses.replace(operator_ctx, secrets={"postgres_dsn": scratch_url})


@dataclass
class Dials:
    """Where the tools asked the driver to connect."""

    calls: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> Dials:
    """Any connection attempt by the tools fails the test: the guard alone must decide."""
    dials = Dials()

    async def refuse(**kwargs: Any) -> None:
        dials.calls.append(kwargs)
        raise AssertionError(f"the guard let a connection to {kwargs.get('host')} through")

    monkeypatch.setattr(asyncpg, "connect", refuse)
    return dials


@pytest.fixture
def dials(monkeypatch: pytest.MonkeyPatch) -> Dials:
    """Record every connection attempt; only loopback and unix sockets are really dialled, any
    other address fails as unreachable without a packet being sent."""
    dials = Dials()
    real = asyncpg.connect

    async def recording(**kwargs: Any) -> Any:
        dials.calls.append(kwargs)
        host = str(kwargs["host"])
        if not (host.startswith("/") or host in ("127.0.0.1", "::1")):
            raise OSError(f"test network: {host} is unreachable")
        return await real(**kwargs)

    monkeypatch.setattr(asyncpg, "connect", recording)
    return dials
