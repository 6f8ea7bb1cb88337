"""Database pool use as it changes: connections checked out, the pool's size, overflow, and
checkouts that waited or were refused (`pasar_core.storage.db.RefusingPool`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from pasar_core.observability.metrics import Metrics
from pasar_core.storage.db import RefusingPool

ORM_POOL = "orm"
READS_POOL = "reads"


def watch_engine(engine: AsyncEngine, metrics: Metrics, name: str = ORM_POOL) -> None:
    pool = engine.sync_engine.pool
    checked_out = metrics.pool_connections.labels(pool=name, state="checked_out")
    overflow = metrics.pool_connections.labels(pool=name, state="overflow")
    metrics.pool_connections.labels(pool=name, state="size").set(pool.size())  # type: ignore[attr-defined]

    def moved(*_: Any) -> None:
        checked_out.set(pool.checkedout())  # type: ignore[attr-defined]
        overflow.set(max(0, pool.overflow()))  # type: ignore[attr-defined]

    event.listen(engine.sync_engine, "checkout", moved)
    event.listen(engine.sync_engine, "checkin", moved)
    checked_out.set(0)
    overflow.set(0)
    if isinstance(pool, RefusingPool):
        pool.on_wait = metrics.pool_waits.labels(pool=name).inc
        pool.on_timeout = metrics.pool_timeouts.labels(pool=name).inc
