"""Execution events: persisted in order (`seq` is the SSE id) and announced with PostgreSQL
NOTIFY, so any process (API or RQ worker) can publish and any API process can stream them.

Token deltas are live only (not persisted): a resumed stream replays every step, not tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pasar_core.storage.models import Execution, ExecutionEvent

log = logging.getLogger("pasar.events")

EVENTS_CHANNEL = "pasar_events"
CANCEL_CHANNEL = "pasar_cancel"
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "limit_exceeded", "cancelled"})
STEP_TYPES = frozenset({"model_call", "tool_call", "tool_result"})
NOTIFY_LIMIT = 7000  # PostgreSQL caps a payload at 8000 bytes; bigger events are re-read


@dataclass(frozen=True, slots=True)
class Event:
    execution_id: uuid.UUID
    seq: int | None  # None for live-only events (tokens)
    type: str
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "type": self.type, "data": self.data}

    @property
    def is_terminal(self) -> bool:
        return self.type == "status" and self.data.get("status") in TERMINAL_STATUSES


async def publish(
    session: AsyncSession,
    execution_id: uuid.UUID,
    seq: int | None,
    type_: str,
    data: dict[str, Any],
) -> Event:
    """Persist (when `seq` is given) and announce one event, within the caller's transaction."""
    if seq is not None:
        session.add(ExecutionEvent(execution_id=execution_id, seq=seq, type=type_, data=data))
    payload = json.dumps({"e": str(execution_id), "s": seq, "t": type_, "d": data}, default=str)
    if len(payload) > NOTIFY_LIMIT:
        payload = json.dumps({"e": str(execution_id), "s": seq, "t": type_, "big": True})
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": EVENTS_CHANNEL, "payload": payload},
    )
    return Event(execution_id, seq, type_, data)


async def request_cancel(session: AsyncSession, execution_id: uuid.UUID) -> None:
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": CANCEL_CHANNEL, "payload": str(execution_id)},
    )


async def stored_events(
    sessionmaker: async_sessionmaker[AsyncSession], execution_id: uuid.UUID, after: int
) -> list[Event]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(ExecutionEvent)
            .where(ExecutionEvent.execution_id == execution_id, ExecutionEvent.seq > after)
            .order_by(ExecutionEvent.seq)
        )
        return [Event(row.execution_id, row.seq, row.type, row.data) for row in rows]


class EventHub:
    """One LISTEN connection per process, fanning notifications out to local subscribers."""

    def __init__(self, database_url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._dsn = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self._sessionmaker = sessionmaker
        self._subscribers: dict[uuid.UUID, set[asyncio.Queue[Event | None]]] = defaultdict(set)
        self._cancel_handlers: list[Callable[[uuid.UUID], None]] = []
        self._connection: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            if self._connection is not None:
                return
            self._connection = await asyncpg.connect(self._dsn)
            await self._connection.add_listener(EVENTS_CHANNEL, self._on_event)
            await self._connection.add_listener(CANCEL_CHANNEL, self._on_cancel)

    async def close(self) -> None:
        async with self._lock:
            if self._connection is not None:
                with contextlib.suppress(Exception):
                    await self._connection.close()
                self._connection = None
        for queues in self._subscribers.values():
            for queue in queues:
                queue.put_nowait(None)

    def on_cancel(self, handler: Callable[[uuid.UUID], None]) -> None:
        self._cancel_handlers.append(handler)

    def _on_cancel(self, connection: object, pid: int, channel: str, payload: str) -> None:
        try:
            execution_id = uuid.UUID(payload)
        except ValueError:
            return
        for handler in self._cancel_handlers:
            handler(execution_id)

    def _on_event(self, connection: object, pid: int, channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            execution_id = uuid.UUID(message["e"])
        except (ValueError, KeyError):
            log.warning("ignoring a malformed event notification")
            return
        queues = self._subscribers.get(execution_id)
        if not queues:
            return
        event = Event(execution_id, message.get("s"), message["t"], message.get("d") or {})
        if message.get("big"):
            event = Event(execution_id, event.seq, event.type, {"_reload": True})
        for queue in queues:
            queue.put_nowait(event)

    async def subscribe(self, execution_id: uuid.UUID, after: int = 0) -> AsyncIterator[Event]:
        """Every event after `after` in order (stored first, then live) until the run ends."""
        await self.start()
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._subscribers[execution_id].add(queue)
        try:
            last = after
            for event in await stored_events(self._sessionmaker, execution_id, after):
                last = event.seq or last
                yield event
                if event.is_terminal:
                    return
            if await self._finished(execution_id) and not await stored_events(
                self._sessionmaker, execution_id, last
            ):
                return
            while True:
                live = await queue.get()
                if live is None:
                    return
                if live.seq is not None:
                    if live.seq <= last:
                        continue
                    if live.seq > last + 1 or live.data.get("_reload"):
                        # Missed or oversized: read the gap from the table.
                        for event in await stored_events(self._sessionmaker, execution_id, last):
                            last = event.seq or last
                            yield event
                            if event.is_terminal:
                                return
                        continue
                    last = live.seq
                yield live
                if live.is_terminal:
                    return
        finally:
            self._subscribers[execution_id].discard(queue)
            if not self._subscribers[execution_id]:
                del self._subscribers[execution_id]

    async def _finished(self, execution_id: uuid.UUID) -> bool:
        async with self._sessionmaker() as session:
            status = await session.scalar(
                select(Execution.status).where(Execution.id == execution_id)
            )
        return status is None or status in TERMINAL_STATUSES
