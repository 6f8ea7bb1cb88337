"""Every postgres tool through an agent run with a scripted model, against a seeded throwaway
database on the embedded PostgreSQL; hostile SQL through postgres:query ends as a tool error."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD, PostgresForTests
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.runs import call, create_agent, error, execute, result, scripted

Headers = dict[str, str]

TOOLS = ["postgres:list_tables", "postgres:describe_table", "postgres:query", "postgres:execute"]

SEED = [
    """CREATE TABLE customers (
           id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
           name text NOT NULL,
           email text UNIQUE,
           joined date NOT NULL DEFAULT DATE '2024-01-01'
       )""",
    "COMMENT ON TABLE customers IS 'People who buy things'",
    """CREATE TABLE orders (
           id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
           customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
           total numeric(10, 2) NOT NULL,
           paid boolean NOT NULL DEFAULT false
       )""",
    "CREATE INDEX orders_customer_idx ON orders (customer_id)",
    "CREATE VIEW big_orders AS SELECT * FROM orders WHERE total >= 100",
    """INSERT INTO customers (name, email, joined) VALUES
           ('Ana', 'ana@example.com', '2024-02-03'),
           ('Bruno', 'bruno@example.com', '2024-03-04'),
           ('Chen', NULL, '2024-04-05')""",
    """INSERT INTO orders (customer_id, total, paid) VALUES
           (1, 120.50, true), (1, 15.00, false), (2, 99.99, true)""",
    "ANALYZE",
]


async def _sql(dsn: str, *statements: str) -> list[list[dict[str, Any]]]:
    connection = await asyncpg.connect(dsn)
    try:
        return [[dict(row) for row in await connection.fetch(sql)] for sql in statements]
    finally:
        await connection.close()


@pytest.fixture
def shop_dsn(pasar_postgres: PostgresForTests) -> Iterator[str]:
    """A `postgresql://` URL to a fresh database with customers, orders and a view."""
    name = f"pasar_e2e_shop_{uuid.uuid4().hex[:10]}"
    url = pasar_postgres.create_database(name)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        asyncio.run(_sql(dsn, *SEED))
        yield dsn
    finally:
        pasar_postgres.drop_database(name)


def db_agent(
    client: TestClient, headers: Headers, dsn: str, *replies: dict[str, Any], **config: Any
) -> str:
    agent_id = create_agent(client, headers, TOOLS, scripted(*replies, **config))
    response = client.put(
        f"/agents/{agent_id}/secrets/postgres_dsn", json={"value": dsn}, headers=headers
    )
    assert response.status_code == 204, response.text
    return agent_id


def run_db(
    client: TestClient,
    headers: Headers,
    dsn: str,
    *replies: dict[str, Any],
    approved: list[dict[str, Any]] | None = None,
    **config: Any,
) -> list[dict[str, Any]]:
    """Run an agent with every postgres tool and the DSN secret; its tool_result steps.

    Calls that wait for approval (postgres:execute is destructive) are approved; `approved`
    collects them."""
    agent_id = db_agent(client, headers, dsn, *replies, **config)
    run = execute(client, headers, agent_id, approved)
    steps = [step for step in run["steps"] if step["type"] == "tool_result"]
    assert len(steps) == sum(len(reply["tool_calls"]) for reply in replies), run["steps"]
    return steps


def test_list_tables(client: TestClient, make_user: Callable[..., Headers], shop_dsn: str) -> None:
    [listed, in_public, in_missing] = run_db(
        client,
        make_user(),
        shop_dsn,
        call("postgres:list_tables"),
        call("postgres:list_tables", schema="public"),
        call("postgres:list_tables", schema="no_such_schema"),
    )
    tables = result(listed)
    assert tables["truncated"] is False
    assert [(t["schema"], t["name"], t["kind"]) for t in tables["tables"]] == [
        ("public", "big_orders", "view"),
        ("public", "customers", "table"),
        ("public", "orders", "table"),
    ]
    customers = tables["tables"][1]
    assert customers["estimated_rows"] == 3
    assert customers["comment"] == "People who buy things"
    assert tables["tables"][0]["estimated_rows"] is None
    assert result(in_public) == tables
    assert result(in_missing) == {"tables": [], "truncated": False}


def test_describe_table(
    client: TestClient, make_user: Callable[..., Headers], shop_dsn: str
) -> None:
    [orders, customers, view, missing] = run_db(
        client,
        make_user(),
        shop_dsn,
        call("postgres:describe_table", table="orders"),
        call("postgres:describe_table", table="customers", schema="public"),
        call("postgres:describe_table", table="big_orders"),
        call("postgres:describe_table", table="Orders"),
    )
    described = result(orders)
    assert (described["schema"], described["name"], described["kind"]) == (
        "public",
        "orders",
        "table",
    )
    columns = {column["name"]: column for column in described["columns"]}
    assert list(columns) == ["id", "customer_id", "total", "paid"]
    assert columns["total"]["type"] == "numeric(10,2)"
    assert columns["total"]["nullable"] is False
    assert columns["paid"]["default"] == "false"
    assert columns["id"]["identity"] == "always"
    assert described["primary_key"] == ["id"]
    [foreign_key] = described["foreign_keys"]
    assert foreign_key["columns"] == ["customer_id"]
    assert foreign_key["references"] == {
        "schema": "public",
        "table": "customers",
        "columns": ["id"],
    }
    assert foreign_key["on_delete"] == "CASCADE"
    assert {index["name"] for index in described["indexes"]} == {
        "orders_pkey",
        "orders_customer_idx",
    }

    people = result(customers)
    assert people["comment"] == "People who buy things"
    assert [c["name"] for c in people["columns"]] == ["id", "name", "email", "joined"]
    assert [u["columns"] for u in people["unique_constraints"]] == [["email"]]
    [incoming] = people["referenced_by"]
    assert (incoming["table"], incoming["columns"]) == ("orders", ["customer_id"])

    assert result(view)["kind"] == "view"
    assert result(view)["primary_key"] is None
    # Names are case-sensitive: the model is told which name differs only in case.
    message = error(missing)
    assert message.startswith("TOOL_ERROR")
    assert "public.orders" in message


def test_query_returns_typed_json_rows(
    client: TestClient, make_user: Callable[..., Headers], shop_dsn: str
) -> None:
    sql = (
        "SELECT c.name, c.joined, sum(o.total) AS spent, count(*) AS orders, bool_and(o.paid) "
        "AS all_paid FROM customers c JOIN orders o ON o.customer_id = c.id "
        "WHERE o.total > $1 GROUP BY c.name, c.joined ORDER BY c.name"
    )
    [grouped, capped] = run_db(
        client,
        make_user(),
        shop_dsn,
        call("postgres:query", sql=sql, params=[10]),
        call("postgres:query", sql="SELECT id, name FROM customers ORDER BY id", max_rows=2),
    )
    answer = result(grouped)
    assert answer["columns"] == [
        {"name": "name", "type": "text"},
        {"name": "joined", "type": "date"},
        {"name": "spent", "type": "numeric"},
        {"name": "orders", "type": "int8"},
        {"name": "all_paid", "type": "bool"},
    ]
    assert answer["rows"] == [
        {"name": "Ana", "joined": "2024-02-03", "spent": "135.50", "orders": 2, "all_paid": False},
        {"name": "Bruno", "joined": "2024-03-04", "spent": "99.99", "orders": 1, "all_paid": True},
    ]
    assert (answer["row_count"], answer["truncated"]) == (2, False)

    cut = result(capped)
    assert cut["rows"] == [{"id": 1, "name": "Ana"}, {"id": 2, "name": "Bruno"}]
    assert (cut["row_count"], cut["truncated"], cut["truncated_by"]) == (2, True, "max_rows")


def test_execute_writes_and_commits(
    client: TestClient, make_user: Callable[..., Headers], shop_dsn: str
) -> None:
    approved: list[dict[str, Any]] = []
    [inserted, updated, read_back] = run_db(
        client,
        make_user(),
        shop_dsn,
        call(
            "postgres:execute",
            sql="INSERT INTO customers (name, email) VALUES ($1, $2) RETURNING id, name",
            params=["Dana", "dana@example.com"],
        ),
        call("postgres:execute", sql="UPDATE orders SET paid = true WHERE NOT paid"),
        call("postgres:query", sql="SELECT count(*) AS unpaid FROM orders WHERE NOT paid"),
        approved=approved,
    )
    # postgres:execute is destructive: each call waited for (and got) approval; query did not.
    assert [pending["tool"] for pending in approved] == ["postgres:execute"] * 2
    assert approved[1]["args"] == {"sql": "UPDATE orders SET paid = true WHERE NOT paid"}
    assert result(inserted) == {
        "status": "INSERT 0 1",
        "rows_affected": 1,
        "returning": [{"id": 4, "name": "Dana"}],
    }
    assert result(updated) == {"status": "UPDATE 1", "rows_affected": 1, "returning": []}
    assert result(read_back)["rows"] == [{"unpaid": 0}]
    [customers] = asyncio.run(_sql(shop_dsn, "SELECT name, email FROM customers WHERE id = 4"))
    assert customers == [{"name": "Dana", "email": "dana@example.com"}]


def test_execute_ddl(client: TestClient, make_user: Callable[..., Headers], shop_dsn: str) -> None:
    [created, listed] = run_db(
        client,
        make_user(),
        shop_dsn,
        call("postgres:execute", sql="CREATE TABLE notes (id serial PRIMARY KEY, body text)"),
        call("postgres:list_tables"),
    )
    assert result(created)["status"] == "CREATE TABLE"
    assert "notes" in [table["name"] for table in result(listed)["tables"]]


HOSTILE_QUERIES = [
    "DELETE FROM orders",
    "UPDATE customers SET name = 'pwned'",
    "WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone",
    "SELECT 1; DELETE FROM orders",
    "DROP TABLE orders",
]


def test_writes_through_query_end_as_tool_errors_and_change_nothing(
    client: TestClient, make_user: Callable[..., Headers], shop_dsn: str
) -> None:
    before = asyncio.run(_sql(shop_dsn, "TABLE customers ORDER BY id", "TABLE orders ORDER BY id"))
    steps = run_db(
        client,
        make_user(),
        shop_dsn,
        *(call("postgres:query", sql=sql) for sql in HOSTILE_QUERIES),
        call("postgres:query", sql="SELECT count(*) AS n FROM orders"),
    )
    for sql, step in zip(HOSTILE_QUERIES, steps, strict=False):
        assert error(step).startswith("TOOL_ERROR: "), (sql, step)
    # The run goes on after the refusals, and the data is as it was.
    assert result(steps[-1])["rows"] == [{"n": 3}]
    after = asyncio.run(_sql(shop_dsn, "TABLE customers ORDER BY id", "TABLE orders ORDER BY id"))
    assert after == before


def test_a_slow_query_is_cancelled_at_the_agents_statement_timeout(
    client: TestClient, make_user: Callable[..., Headers], shop_dsn: str
) -> None:
    slow, count = run_db(
        client,
        make_user(),
        shop_dsn,
        call("postgres:query", sql="SELECT pg_sleep(30)"),
        call("postgres:query", sql="SELECT count(*) AS n FROM customers"),
        tool_settings={"postgres": {"statement_timeout_ms": 200}},
    )
    # SQLSTATE 57014 from the server (not the tool's own backstop deadline) gives this message,
    # and no backend is still sleeping: the database ended the statement.
    assert error(slow).startswith(
        "TOOL_TIMEOUT: the statement was cancelled after the statement timeout of 200 ms"
    ), error(slow)
    [[sleeping]] = asyncio.run(
        _sql(shop_dsn, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = "
             "current_database() AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()")
    )  # fmt: skip
    assert sleeping == {"n": 0}
    assert result(count)["rows"] == [{"n": 3}]


def test_without_the_secret_the_tools_say_what_to_set(
    client: TestClient, make_user: Callable[..., Headers]
) -> None:
    headers = make_user()
    agent_id = create_agent(client, headers, TOOLS, scripted(call("postgres:list_tables")))
    [step] = [s for s in execute(client, headers, agent_id)["steps"] if s["type"] == "tool_result"]
    message = error(step)
    assert message.startswith("TOOL_ERROR")
    assert f"PUT /agents/{agent_id}/secrets/postgres_dsn" in message


def test_a_wrong_password_is_an_error_without_the_password(
    client: TestClient, make_user: Callable[..., Headers], shop_dsn: str
) -> None:
    wrong = make_url(shop_dsn).set(password="not-the-password-4242")
    dsn = wrong.render_as_string(hide_password=False)
    [step] = run_db(client, make_user(), dsn, call("postgres:list_tables"))
    message = error(step)
    assert message.startswith("POSTGRES_UNREACHABLE: could not connect to the PostgreSQL server")
    assert "not-the-password-4242" not in message


def test_a_server_that_allows_no_private_hosts_refuses_the_loopback_database(
    pasar_settings: Settings, shop_dsn: str
) -> None:
    """The operator's PASAR_ALLOW_PRIVATE_HOSTS reaches the tools through the run (none here)."""
    strict = pasar_settings.with_overrides(allow_private_hosts=())
    with TestClient(create_app(strict), raise_server_exceptions=False) as client:
        credentials = {"email": "strict@example.com", "password": TEST_PASSWORD}
        assert client.post("/auth/signup", json=credentials).status_code == 201
        token = client.post("/auth/token", json=credentials).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        [step] = run_db(client, headers, shop_dsn, call("postgres:query", sql="SELECT 1"))
    assert error(step).startswith("POSTGRES_UNREACHABLE: could not connect")
    password = make_url(shop_dsn).password
    assert password
    assert password not in error(step)
