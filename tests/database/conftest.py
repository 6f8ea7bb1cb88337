"""A real PgBouncer in transaction mode in front of the session's PostgreSQL: skipped without
Debian's pgbouncer, failed when `CI=true` (scripts/test installs it as root)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
from pasar_core.testing import PostgresForTests

from tests.support.pgbouncer import NoPgBouncer, PgBouncer, pgbouncer


@contextlib.contextmanager
def pgbouncer_for_tests(server_url: str, *, pool_size: int) -> Iterator[PgBouncer]:
    try:
        with pgbouncer(server_url, pool_size=pool_size) as running:
            yield running
    except NoPgBouncer as error:
        if os.environ.get("CI") == "true":
            pytest.fail(str(error))
        pytest.skip(str(error))


@pytest.fixture
def bouncer(pasar_postgres: PostgresForTests) -> Iterator[PgBouncer]:
    with pgbouncer_for_tests(pasar_postgres.admin_url, pool_size=2) as running:
        yield running
