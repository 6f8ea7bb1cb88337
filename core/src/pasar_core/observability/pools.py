"""Database pool use as it changes: connections checked out, the pool's size, overflow, and
checkouts that waited or were refused (`pasar_core.storage.db.RefusingPool`)."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from pasar_core.observability.metrics import Metrics
from pasar_core.storage.db import RefusingPool

ORM_POOL = "orm"
READS_POOL = "reads"


def watch_engine(engine: AsyncEngine, metrics: Metrics, name: str = ORM_POOL) -> None:
    pool = engine.sync_engine.pool
    size: int = pool.size()  # type: ignore[attr-defined]
    checked_out = metrics.pool_connections.labels(pool=name, state="checked_out")
    overflow = metrics.pool_connections.labels(pool=name, state="overflow")
    metrics.pool_connections.labels(pool=name, state="size").set(size)
    held = [0]  # the checkin event comes before the pool counts the connection back

    def moved(change: int) -> None:
        held[0] += change
        checked_out.set(held[0])
        overflow.set(max(0, held[0] - size))

    event.listen(engine.sync_engine, "checkout", lambda *_: moved(1))
    event.listen(engine.sync_engine, "checkin", lambda *_: moved(-1))
    moved(0)
    if isinstance(pool, RefusingPool):
        pool.on_wait = metrics.pool_waits.labels(pool=name).inc
        pool.on_timeout = metrics.pool_timeouts.labels(pool=name).inc
