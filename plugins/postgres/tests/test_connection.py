from __future__ import annotations

import dataclasses
import logging
from urllib.parse import quote

import pytest
from pasar_core.errors import ToolError
from pasar_core.registry import Registry
from pasar_core.specs import ToolContext
from pasar_postgres.connection import UNREACHABLE_MESSAGE, DatabaseUnreachable
from pasar_postgres.dsn import parse_dsn, scrub
from sqlalchemy.engine import make_url

from .conftest import Dials

pytestmark = pytest.mark.anyio

SECRET = "s3cr3t-P@ss/w0rd"
ENCODED = quote(SECRET, safe="")


async def test_missing_dsn_says_how_to_set_it(
    registry: Registry, tool_context: ToolContext
) -> None:
    ctx = dataclasses.replace(tool_context, agent_id="a-42")
    for tool_id, args in (("postgres:list_tables", {}), ("postgres:query", {"sql": "SELECT 1"})):
        with pytest.raises(ToolError, match=r"PUT /agents/a-42/secrets/postgres_dsn"):
            await registry.invoke(tool_id, ctx, args)


@pytest.mark.parametrize(
    ("dsn", "reason"),
    [
        (f"mysql://root:{ENCODED}@db:3306/x", "must start with postgresql://"),
        # libpq's key=value form, with its multi-host, hostaddr, service and passfile tricks
        (f"host=db user=u password={ENCODED}", "must start with postgresql://"),
        (f"host=a,b hostaddr=10.0.0.1 user=u password={ENCODED}", "must start with postgresql://"),
        (f"service=prod password={ENCODED}", "must start with postgresql://"),
        (f"postgresql://u:{ENCODED}@/db", "needs a host"),
        (f"postgresql://u:{ENCODED}@/db?host=/var/run/postgresql", "needs a host"),
        (f"postgresql://u:{ENCODED}@%2Ftmp%2F..%2Fetc/db", "without '.' or '..' parts"),
        (f"postgresql://u:{ENCODED}@%2Ftmp%2F/db", "without '.' or '..' parts"),
        (f"postgresql://u:{ENCODED}@%40abstract/db", "abstract unix sockets"),
        (f"postgresql://u:{ENCODED}@db:99999/x", "host or port"),
        (f"postgresql://u:{ENCODED}@a:5432,b:5432/x", "exactly one host"),
        (f"postgresql://u:{ENCODED}@a,10.0.0.1/x", "exactly one host"),
        (f"postgresql://:{ENCODED}@db/x", "needs a user name"),
        (f"postgresql://u:{ENCODED}@db/x?passfile=/root/.pgpass", "'passfile' is not supported"),
        (f"postgresql://u:{ENCODED}@db/x?service=prod", "'service' is not supported"),
        (f"postgresql://u:{ENCODED}@db/x?hostaddr=10.0.0.1", "'hostaddr' is not supported"),
        (f"postgresql://u:{ENCODED}@db/x?host=/tmp", "'host' is not supported"),
        (f"postgresql://u:{ENCODED}@db/x?port=22", "'port' is not supported"),
        (f"postgresql://u:{ENCODED}@db/x?sslrootcert=/etc/shadow", "'sslrootcert' is not"),
        (f"postgresql://u:{ENCODED}@db/x?sslmode=maybe", "sslmode must be one of"),
        (f"postgresql://u:{ENCODED}@db/x\n", "control characters"),
        ("", "no database is configured"),
    ],
)
async def test_bad_dsns_are_refused_without_the_password(
    registry: Registry, tool_context: ToolContext, no_connect: Dials, dsn: str, reason: str
) -> None:
    ctx = dataclasses.replace(tool_context, secrets={"postgres_dsn": dsn})
    with pytest.raises(ToolError, match=reason) as caught:
        await registry.invoke("postgres:query", ctx, {"sql": "SELECT 1"})
    assert SECRET not in str(caught.value)
    assert quote(SECRET, safe="") not in str(caught.value)
    assert caught.value.__cause__ is None
    assert no_connect.calls == []


async def test_a_wrong_password_is_the_one_error_and_never_logged(
    registry: Registry,
    operator_ctx: ToolContext,
    shop_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = make_url(shop_url).set(password=SECRET).render_as_string(hide_password=False)
    ctx = dataclasses.replace(operator_ctx, secrets={"postgres_dsn": wrong})
    with (
        caplog.at_level(logging.DEBUG, logger="pasar.postgres"),
        pytest.raises(DatabaseUnreachable) as caught,
    ):
        await registry.invoke("postgres:list_tables", ctx, {})
    assert caught.value.message == UNREACHABLE_MESSAGE
    [record] = [r for r in caplog.records if r.name == "pasar.postgres"]
    assert "password authentication failed" in record.getMessage()  # the reason, server-side
    for text in (str(caught.value), caplog.text):
        assert SECRET not in text
        assert ENCODED not in text


async def test_no_password_never_falls_back_to_the_servers_credentials(
    registry: Registry, operator_ctx: ToolContext, shop_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_url(shop_url)
    monkeypatch.setenv("PGPASSWORD", str(url.password))  # the server's own credentials
    without = f"postgresql://{url.username}@{url.host}:{url.port}/{url.database}"
    ctx = dataclasses.replace(operator_ctx, secrets={"postgres_dsn": without})
    with pytest.raises(DatabaseUnreachable, match="could not connect"):
        await registry.invoke("postgres:query", ctx, {"sql": "SELECT 1"})


def test_parse_dsn_reads_every_part() -> None:
    args = parse_dsn("postgres://al%40ice:p%3Ass@[::1]:6543/my%20db?sslmode=require")
    assert (args.host, args.port, args.user, args.password, args.database, args.sslmode) == (
        "::1",
        6543,
        "al@ice",
        "p:ss",
        "my db",
        "require",
    )
    assert "p:ss" not in repr(args)
    defaults = parse_dsn("postgresql://bob@db.example.com")
    assert (defaults.port, defaults.database, defaults.password, defaults.sslmode) == (
        5432,
        "bob",
        "",
        "prefer",
    )


def test_scrub_hides_plain_and_encoded_secrets() -> None:
    text = f"failed for {SECRET} and {quote(SECRET, safe='')}"
    assert scrub(text, [SECRET]) == "failed for *** and ***"
