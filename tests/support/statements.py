"""Count the statements an app sends to PostgreSQL, whichever layer sends them.

SQLAlchemy's `before_cursor_execute` sees what the ORM and Core execute (as prepared
statements); asyncpg's query loggers, added to each pooled connection as it is checked out, see
what goes to the driver directly: the BEGIN / COMMIT / ROLLBACK of SQLAlchemy's transactions;
the read pool (`pasar_core.storage.reads`) reports its statements to observers. Together: every
round trip of both pools.
"""

from __future__ import annotations

from typing import Any

from pasar_core.services import Services
from pasar_core.storage.db import engine_of
from sqlalchemy import event


class Statements:
    """SQL text of every statement sent through one app's engine while it is open."""

    def __init__(self, services: Services) -> None:
        self.seen: list[str] = []
        self._engine = engine_of(services.sessionmaker).sync_engine
        self._drivers: list[Any] = []
        event.listen(self._engine, "before_cursor_execute", self._record_cursor)
        event.listen(self._engine.pool, "checkout", self._on_checkout)
        self._reads = services.reads
        if self._reads is not None:
            self._reads.observe(self._record_driver)

    def _record_cursor(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(statement)

    def _record_driver(self, record: Any) -> None:
        self.seen.append(record.query)

    def _on_checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        driver = record.driver_connection
        if driver not in self._drivers:
            driver.add_query_logger(self._record_driver)
            self._drivers.append(driver)

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._record_cursor)
        event.remove(self._engine.pool, "checkout", self._on_checkout)
        for driver in self._drivers:
            driver.remove_query_logger(self._record_driver)
        if self._reads is not None:
            self._reads.unobserve(self._record_driver)
