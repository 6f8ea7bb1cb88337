"""Alembic environment: async engine, one advisory lock so concurrent starts migrate once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from pasar_core.storage.db import build_engine
from pasar_core.storage.models import Base
from pasar_core.storage.partitions import is_partition

MIGRATION_LOCK_ID = 0x70617361  # "pasa"


def _include_name(name: str | None, type_: str, parent_names: Mapping[str, Any]) -> bool:
    """The partitions the retention pass makes (and their indexes) are not the models'."""
    table = name if type_ == "table" else parent_names.get("table_name")
    return table is None or not is_partition(table)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True,
                      include_name=_include_name)  # type: ignore[arg-type]  # fmt: skip
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()


async def _run_online(database_url: str) -> None:
    engine = build_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


asyncio.run(_run_online(context.config.attributes["database_url"]))
