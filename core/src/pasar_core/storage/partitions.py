"""Monthly range partitions of the tables that grow, created ahead and dropped whole once
everything in them has expired (pasar_core.privacy.retention calls both every pass).

- `execution_events` by its run's creation time (`execution_created_at`, copied from
  `executions.created_at` when an event is written): a run's events share one partition, so
  `(execution_id, seq, execution_created_at)` is as unique as `(execution_id, seq)`. A partition
  goes when every run created in its month is finished and past its organisation's
  `retention_days` (or gone); the runs' own rows are then deleted by the row pass, which finds
  no events left to cascade to.
- `embeddings` by `created_at`: a partition goes when every chunk in it is past its agent's
  organisation's `knowledge_days`.

`executions` itself is not partitioned: its primary key `id` is what every read, lock and
foreign key uses (`session.get`, `execution_events.execution_id`), and PostgreSQL requires a
partitioned table's primary and unique keys to include the partition key. Each table has a
DEFAULT partition, so a write never fails for want of a partition; a month whose rows fell
into it (partitions not created in time) stays there and is deleted row by row.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("pasar.storage.partitions")

MONTHS_AHEAD = 3
LOCK_TIMEOUT = "2s"
"""A drop waits at most this long for the table's lock (then tries again next pass): writers
that arrive meanwhile queue behind the waiting drop, so this bounds their wait too."""
LOCKED_CHECK_TIMEOUT = "2s"
"""How long the check under the lock may run (an indexed lookup: `ix_executions_created`)."""
TERMINAL = ("succeeded", "failed", "limit_exceeded", "cancelled")


@dataclass(frozen=True, slots=True)
class Partitioned:
    table: str
    key: str


EVENTS = Partitioned("execution_events", "execution_created_at")
EMBEDDINGS = Partitioned("embeddings", "created_at")
PARTITIONED = (EVENTS, EMBEDDINGS)
_NAME = re.compile(r"_p(\d{4})_(\d{2})$")


def is_partition(table: str) -> bool:
    """A monthly or DEFAULT partition of a partitioned table (made at run time, not by the
    models: the schema comparison leaves them out)."""
    return any(table == f"{p.table}_default" or (table.startswith(f"{p.table}_p")
               and _NAME.search(table) is not None) for p in PARTITIONED)  # fmt: skip


def month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def add_months(start: datetime, months: int) -> datetime:
    index = start.year * 12 + start.month - 1 + months
    return start.replace(year=index // 12, month=index % 12 + 1)


def partition_name(table: str, start: datetime) -> str:
    return f"{table}_p{start:%Y_%m}"


def create_partition_sql(table: str, start: datetime) -> str:
    end = add_months(start, 1)
    return (
        f"CREATE TABLE IF NOT EXISTS {partition_name(table, start)} PARTITION OF {table} "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


async def partitions_of(conn: AsyncConnection, table: str) -> dict[str, datetime]:
    """The monthly partitions of `table` (name: first instant of its month), DEFAULT left out."""
    rows = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:table AS regclass)"
        ),
        {"table": table},
    )
    months: dict[str, datetime] = {}
    for (name,) in rows:
        if found := _NAME.search(name):
            month = datetime(int(found[1]), int(found[2]), 1, tzinfo=UTC)
            if name == partition_name(table, month):  # only names this module makes
                months[name] = month
    return months


async def ensure_partitions(
    engine: AsyncEngine, now: datetime, *, months_ahead: int = MONTHS_AHEAD
) -> list[str]:
    """Create this month's partitions and the next `months_ahead` months' that are missing;
    returns the names created. A month some rows already reached in the DEFAULT partition
    cannot be created (PostgreSQL refuses): it is logged and left to the DEFAULT partition."""
    created: list[str] = []
    first = month_start(now)
    for partitioned in PARTITIONED:
        async with engine.connect() as conn:
            existing = await partitions_of(conn, partitioned.table)
        for months in range(months_ahead + 1):
            start = add_months(first, months)
            name = partition_name(partitioned.table, start)
            if name in existing:
                continue
            try:
                async with engine.begin() as conn:
                    await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                    await conn.execute(text(create_partition_sql(partitioned.table, start)))
            except Exception as error:
                log.warning("could not create partition %s: %s", name, type(error).__name__)
                continue
            created.append(name)
    return created


_EVENTS_KEPT = text(
    "SELECT EXISTS (SELECT 1 FROM executions x LEFT JOIN organisations o "
    "ON o.id = x.organisation_id WHERE x.created_at >= :start AND x.created_at < :end "
    "AND NOT (o.retention_days IS NOT NULL AND x.status = ANY(:terminal) "
    "AND coalesce(x.finished_at, x.created_at) < CAST(:now AS timestamptz) - make_interval(days => o.retention_days)))"
)


def _embeddings_kept(partition: str) -> str:
    # `partition` is a name partition_name() made (never a caller's input).
    return (
        f"SELECT EXISTS (SELECT 1 FROM {partition} e LEFT JOIN agents a ON a.id = e.agent_id "  # noqa: S608
        "LEFT JOIN organisations o ON o.id = a.organisation_id WHERE o.knowledge_days IS NULL "
        "OR e.created_at >= CAST(:now AS timestamptz) - make_interval(days => o.knowledge_days))"
    )


async def _kept(conn: AsyncConnection, partitioned: Partitioned, name: str, start: datetime,
                now: datetime) -> bool:  # fmt: skip
    """True when some row of partition `name` must still be kept."""
    if partitioned is EVENTS:
        end = add_months(start, 1)
        values = {"start": start, "end": end, "now": now, "terminal": list(TERMINAL)}
        return bool(await conn.scalar(_EVENTS_KEPT, values))
    return bool(await conn.scalar(text(_embeddings_kept(name)), {"now": now}))


def _sqlstate(error: BaseException) -> str:
    """The PostgreSQL error code behind a driver error (`55P03`: lock not available)."""
    cause: BaseException | None = error
    while cause is not None:
        code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if isinstance(code, str):
            return code
        cause = getattr(cause, "orig", None) or cause.__cause__
    return type(error).__name__


async def drop_expired_partitions(
    engine: AsyncEngine, now: datetime, *, lock_timeout: str = LOCK_TIMEOUT
) -> dict[str, int]:
    """Drop every past month's partition nothing in which is kept any longer; returns the
    dropped partitions with how many rows each held. A partition whose lock is not had within
    `lock_timeout` is logged and left for the next pass."""
    dropped: dict[str, int] = {}
    current = month_start(now)
    for partitioned in PARTITIONED:
        async with engine.connect() as conn:
            months = await partitions_of(conn, partitioned.table)
        for name, start in sorted(months.items(), key=lambda item: item[1]):
            if add_months(start, 1) > current:
                continue  # this month and later: rows are still arriving
            async with engine.connect() as conn:
                if await _kept(conn, partitioned, name, start, now):
                    continue
                # Counted before the lock: rows arriving later are kept rows (checked below).
                count = text(f"SELECT count(*) FROM {name}")  # noqa: S608 - a name we made
                rows = int(await conn.scalar(count) or 0)
            try:
                async with engine.begin() as conn:
                    # Writers lock the parent before a partition: so does this, then checks
                    # again (a row may have arrived), then drops; waiting and holding are both
                    # bounded, so writers never queue behind it for long.
                    await conn.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
                    await conn.execute(
                        text(f"SET LOCAL statement_timeout = '{LOCKED_CHECK_TIMEOUT}'")
                    )
                    await conn.execute(
                        text(f"LOCK TABLE {partitioned.table} IN ACCESS EXCLUSIVE MODE")
                    )
                    if await _kept(conn, partitioned, name, start, now):
                        continue
                    await conn.execute(text(f"DROP TABLE {name}"))
            except Exception as error:
                log.warning("could not drop partition %s (%s); the next retention pass tries "
                            "again", name, _sqlstate(error))  # fmt: skip
                continue
            dropped[name] = rows
    return dropped
