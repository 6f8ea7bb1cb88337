"""Execution events: persisted in order (`seq` is the SSE id) by `executions.store` and
announced with PostgreSQL NOTIFY, so any process (API or worker) can write them and any API
process can stream them.

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
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pasar_core.executions.status import TERMINAL
from pasar_core.executions.store import CANCEL_CHANNEL, EVENTS_CHANNEL
from pasar_core.storage.models import Execution, ExecutionEvent

log = logging.getLogger("pasar.events")

TERMINAL_STATUSES = frozenset(status.value for status in TERMINAL)
STEP_TYPES = frozenset({"recall", "plan", "model_call", "tool_call", "tool_result"})


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
    """One LISTEN connection per process, fanning notifications out to local subscribers.

    `end_streams()` (a draining process) ends every subscription and refuses new ones after
    their stored events, so SSE streams and subscriptions close cleanly and clients resume
    elsewhere with `Last-Event-ID`."""

    def __init__(self, dsn: str, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._dsn = dsn
        self._sessionmaker = sessionmaker
        self._subscribers: dict[uuid.UUID, set[asyncio.Queue[Event | None]]] = defaultdict(set)
        self._cancel_handlers: list[Callable[[uuid.UUID], None]] = []
        self._connection: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._ending = False
        self._hearing_events = False

    async def start(self, *, events: bool = True) -> None:
        """Listen (once per process); `events=False` hears cancellations only, until the
        first subscription (a worker does not decode every event of every run)."""
        async with self._lock:
            if self._connection is None:
                self._connection = await asyncpg.connect(self._dsn)
                await self._connection.add_listener(CANCEL_CHANNEL, self._on_cancel)
            if events and not self._hearing_events:
                await self._connection.add_listener(EVENTS_CHANNEL, self._on_event)
                self._hearing_events = True

    async def close(self) -> None:
        self.end_streams()
        async with self._lock:
            if self._connection is not None:
                with contextlib.suppress(Exception):
                    await self._connection.close()
                self._connection = None
                self._hearing_events = False

    def end_streams(self) -> None:
        """End every subscription now, and each later one after its stored events."""
        self._ending = True
        for queues in self._subscribers.values():
            for queue in queues:
                queue.put_nowait(None)

    @property
    def subscribers(self) -> int:
        return sum(len(queues) for queues in self._subscribers.values())

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
        # Payloads start with {"e": "<execution id>": skip those nobody here follows unread.
        try:
            queues = self._subscribers.get(uuid.UUID(payload[7:43]))
        except ValueError:
            queues = None
        if not queues:
            return
        try:
            message = json.loads(payload)
            execution_id = uuid.UUID(message["e"])
        except (ValueError, KeyError):
            log.warning("ignoring a malformed event notification")
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
            if self._ending or (
                await self._finished(execution_id)
                and not await stored_events(self._sessionmaker, execution_id, last)
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
