"""The one writer of an execution's life: status, steps, events, lease, heartbeat and pauses.

- `create()` inserts an execution with its first event, inside the caller's transaction (the
  one that read the agent).
- A runner writes through a `RunLog` from the process's `Journal`: events get their `seq` when
  they happen and are written in batches (group commit): one transaction writes every pending
  run's events and status changes, checking each run's lease, and announces the events. A
  runner waits for durability only where it matters (`barrier()` before a tool call that is not
  a read, and at the end), so an instant one-tool run commits three times from submit to
  finish. `Journal.beat()` is the heartbeat: one UPDATE for every lease the process holds.
- `transition()` changes the status of a run nobody holds (queued, paused, or whose runner
  died), under a row lock. Every status change is checked against `status.TRANSITIONS`.

A lease is the claim of one runner. A run's first flush claims it (`queued -> running`, only if
still queued and unclaimed, or reserved for this lease); every later flush writes only while the
row still carries that lease. A runner whose lease was taken over (its process was thought dead)
gets `LeaseLost` and writes nothing more: nothing it does after that is recorded or repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, Text, any_, bindparam, func, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from pasar_core.audit.record import write_rows as write_audit_rows
from pasar_core.executions.status import (
    ExecutionStatus,
    IllegalTransition,
    check_transition,
)
from pasar_core.storage.availability import is_unavailable
from pasar_core.storage.db import patient_checkouts
from pasar_core.storage.models import (
    Agent,
    AgentConnection,
    AgentTool,
    AgentVersion,
    Execution,
    ExecutionEvent,
    Membership,
)

log = logging.getLogger("pasar.executions.store")

EVENTS_CHANNEL = "pasar_events"
CANCEL_CHANNEL = "pasar_cancel"
NOTIFY_LIMIT = 7000  # PostgreSQL caps a payload at 8000 bytes; bigger events are re-read
ERROR_TEXT_LIMIT = 2000
FLUSH_S = 0.05
RETRY_S = (0.2, 0.5, 1.0, 2.0)

EXECUTIONS = cast("Table", Execution.__table__)
EVENTS = cast("Table", ExecutionEvent.__table__)
S = ExecutionStatus


class LeaseLost(Exception):
    """This runner no longer holds the run (taken over, cancelled before it started, or its
    record could not be written); it must stop without writing anything more."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What a runner reads of an execution and its agent (one statement)."""

    id: uuid.UUID
    agent_id: uuid.UUID
    user_id: uuid.UUID
    status: ExecutionStatus
    input: Any
    thread_id: str | None
    input_hash: str | None
    executor: str
    attempts: int
    interruptions: int
    cancel_requested: bool
    lease: uuid.UUID | None
    heartbeat_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    last_seq: int
    agent_config: dict[str, Any]
    agent_tool_ids: list[str]
    agent_owner_id: uuid.UUID | None = None
    connections: Mapping[str, uuid.UUID] | None = None
    """Provider -> the user whose grant was attached to the agent (`agent_connections`)."""
    organisation_id: uuid.UUID | None = None
    """The run's organisation (its audit rows name it)."""
    agent_version: int | None = None
    """The agent's version the run runs: its config and tools are that version's."""

    def grant_user(self, provider: str) -> uuid.UUID | None:
        """Whose OAuth grant this run may use for `provider`: the owner's runs, the owner's
        own (never a grant a member attached: it serves the members' runs, and must not
        follow the agent once it is private again); another member's runs, only the grant
        attached to the agent (None: no grant may be used)."""
        if self.agent_owner_id in (None, self.user_id):
            return self.user_id
        return (self.connections or {}).get(provider)

    def stale(self, cutoff: datetime) -> bool:
        """Its holder stopped beating before `cutoff` (or it never had one)."""
        return self.heartbeat_at is None or self.heartbeat_at < cutoff


def _record(row: Any) -> RunRecord:
    return RunRecord(
        id=row.id, agent_id=row.agent_id, user_id=row.user_id, status=S(row.status),
        input=row.input, thread_id=row.thread_id, input_hash=row.input_hash,
        executor=row.executor, attempts=row.attempts, interruptions=row.interruptions,
        cancel_requested=row.cancel_requested, lease=row.lease, heartbeat_at=row.heartbeat_at,
        created_at=row.created_at, started_at=row.started_at, last_seq=row.last_seq,
        agent_config=dict(row.version_config if row.version_config is not None else row.config),
        agent_tool_ids=list(
            row.version_tools if row.version_config is not None else (row.tool_ids or [])
        ),
        agent_owner_id=row.owner_id, agent_version=row.agent_version,
        connections={p: uuid.UUID(u) for p, u in (row.connections or {}).items()},
        organisation_id=row.organisation_id,
    )  # fmt: skip


_TOOL_IDS = (
    select(func.array_agg(aggregate_order_by(AgentTool.tool_id, AgentTool.position)))
    .where(AgentTool.agent_id == Agent.id)
    .scalar_subquery()
)
# Only the attachments of users still in the agent's organisation: one that outlived its
# user's membership (removed, left, erased) serves nobody's runs.
_CONNECTIONS = (
    select(func.json_object_agg(AgentConnection.provider, AgentConnection.user_id))
    .join(Membership, (Membership.user_id == AgentConnection.user_id)
          & (Membership.organisation_id == Agent.organisation_id))
    .where(AgentConnection.agent_id == Agent.id)
    .scalar_subquery()
)  # fmt: skip
_LOAD = (
    select(
        *(EXECUTIONS.c[name] for name in (
            "id", "agent_id", "user_id", "status", "input", "thread_id", "input_hash", "executor",
            "attempts", "interruptions", "cancel_requested", "lease", "heartbeat_at",
            "created_at", "started_at", "last_seq", "organisation_id", "agent_version")),
        Agent.config, _TOOL_IDS.label("tool_ids"), Agent.owner_id,
        _CONNECTIONS.label("connections"),
        AgentVersion.config.label("version_config"), AgentVersion.tools.label("version_tools"),
    )
    .join(Agent, Agent.id == EXECUTIONS.c.agent_id)
    # the version the run was made with: an update while it was queued changes nothing of it
    .outerjoin(AgentVersion, (AgentVersion.agent_id == EXECUTIONS.c.agent_id)
               & (AgentVersion.version == EXECUTIONS.c.agent_version))
    .where(EXECUTIONS.c.id == bindparam("execution_id"))
)  # fmt: skip


async def load(engine: AsyncEngine, execution_id: uuid.UUID) -> RunRecord | None:
    async with engine.connect() as conn:
        row = (await conn.execute(_LOAD, {"execution_id": execution_id})).first()
    return _record(row) if row is not None else None


def end_event(
    status: ExecutionStatus,
    *,
    output: dict[str, Any] | None = None,
    error: str | None = None,
    duration_ms: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The status event that announces a status change (the end of a run included)."""
    data: dict[str, Any] = {"status": status.value}
    if duration_ms is not None:
        data["duration_ms"] = duration_ms
    if output is not None:
        data["output"] = output
    if error:
        data["error"] = error[:ERROR_TEXT_LIMIT]
    return data | extra


def end_values(
    status: ExecutionStatus,
    *,
    output: dict[str, Any] | None = None,
    error: str | None = None,
    duration_ms: int | None = None,
    steps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The row's columns when it reaches `status` (a terminal one ends the lease)."""
    values: dict[str, Any] = {"status": status.value}
    if status.terminal:
        values |= {"output": output, "error": error[:ERROR_TEXT_LIMIT] if error else None,
                   "finished_at": datetime.now(UTC), "lease": None}  # fmt: skip
        if duration_ms is not None:
            values["duration_ms"] = duration_ms
        if steps is not None:
            values["steps"] = steps
    return values


# --- announcing -----------------------------------------------------------------------------


def notification(execution_id: uuid.UUID, seq: int | None, type_: str, data: Any) -> str:
    payload = json.dumps({"e": str(execution_id), "s": seq, "t": type_, "d": data}, default=str)
    if len(payload) > NOTIFY_LIMIT:  # subscribers read it from the table instead
        payload = json.dumps({"e": str(execution_id), "s": seq, "t": type_, "big": True})
    return payload


_NOTIFY = text("SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) AS p")
_NOTIFY = _NOTIFY.bindparams(bindparam("payloads", type_=ARRAY(Text)))


async def _announce(conn: AsyncConnection | AsyncSession, payloads: list[str]) -> None:
    """NOTIFY every payload in order, delivered when the transaction commits."""
    if payloads:
        await conn.execute(_NOTIFY, {"channel": EVENTS_CHANNEL, "payloads": payloads})


# Each event carries its run's creation time, the partition key (pasar_core.storage.partitions).
_RUN_CREATED = (
    select(EXECUTIONS.c.created_at).where(EXECUTIONS.c.id == bindparam("run")).scalar_subquery()
)
_INSERT_EVENTS = insert(EVENTS).values(execution_created_at=_RUN_CREATED)


async def _insert_events(conn: AsyncConnection | AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_INSERT_EVENTS, [{**row, "run": row["execution_id"]} for row in rows])


# --- a new execution -----------------------------------------------------------------------


async def create(
    session: AsyncSession,
    values: Mapping[str, Any],
    *,
    status: ExecutionStatus,
    event: Mapping[str, Any],
    lease: uuid.UUID | None = None,
    owner: str | None = None,
) -> uuid.UUID:
    """Insert an execution (`queued`, or `succeeded` from the cache) with its first event.
    `lease` reserves it for the runner of this process that will claim it."""
    if status not in (S.QUEUED, S.SUCCEEDED):
        raise IllegalTransition(S.QUEUED, status)
    execution_id = uuid.uuid4()
    now = datetime.now(UTC)
    row = {**values, "id": execution_id, "status": status.value, "lease": lease, "owner": owner,
           "heartbeat_at": now, "last_seq": 1, "steps": []}  # fmt: skip
    if status.terminal:
        row |= {"finished_at": now, "duration_ms": 0}
    await session.execute(insert(EXECUTIONS), row)
    data = dict(event)
    await _insert_events(session, [{"execution_id": execution_id, "seq": 1, "type": "status",
                                    "data": data}])  # fmt: skip
    await _announce(session, [notification(execution_id, 1, "status", data)])
    return execution_id


# --- changes to runs nobody holds -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transitioned:
    previous: ExecutionStatus
    status: ExecutionStatus
    last_seq: int
    executor: str


async def transition(
    engine: AsyncEngine,
    execution_id: uuid.UUID,
    to: ExecutionStatus,
    *,
    only_from: Collection[ExecutionStatus],
    event: Mapping[str, Any] | None = None,
    before: Iterable[tuple[str, Mapping[str, Any]]] = (),
    values: Mapping[str, Any] | None = None,
    when: Callable[[Any], bool] | None = None,
    audit: Collection[Mapping[str, Any]] = (),
) -> Transitioned | None:
    """Change the status of a run its runner does not hold, under a row lock.

    None when the run is gone, is not in `only_from` (another writer got there first), or
    `when(row)` says no. `before` are events written ahead of the status event (a decision);
    `values` more columns (SQL expressions allowed); `audit` rows (`audit.record.audit_row`)
    are written in the same transaction. An `only_from` status the table does not allow is a
    bug: raises."""
    for current in only_from:
        check_transition(current, to)
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                select(EXECUTIONS).where(EXECUTIONS.c.id == execution_id).with_for_update()
            )
        ).first()
        if row is None or S(row.status) not in only_from or (when is not None and not when(row)):
            return None
        seq = row.last_seq  # the next event is always last_seq + 1 (the row is locked)
        events: list[dict[str, Any]] = []
        for type_, data in [*before, ("status", event or end_event(to))]:
            seq += 1
            events.append({"execution_id": execution_id, "seq": seq, "type": type_,
                           "data": dict(data)})  # fmt: skip
        columns = {"status": to.value, "last_seq": seq, **(values or {})}
        if to.terminal:
            columns |= {"finished_at": datetime.now(UTC), "lease": None}
        await conn.execute(
            EXECUTIONS.update().where(EXECUTIONS.c.id == execution_id).values(columns)
        )
        await _insert_events(conn, events)
        await write_audit_rows(conn, [dict(row) for row in audit])
        await _announce(conn, [notification(execution_id, e["seq"], e["type"], e["data"])
                               for e in events])  # fmt: skip
    return Transitioned(S(row.status), to, seq, row.executor)


async def reserve(
    engine: AsyncEngine,
    execution_id: uuid.UUID,
    lease: uuid.UUID,
    owner: str,
    *,
    stale_before: datetime,
) -> bool:
    """Reserve a queued run for `lease` when it is unreserved or its reserver stopped beating
    (the reconciler of the process that will run it)."""
    async with engine.begin() as conn:
        result = await conn.execute(
            EXECUTIONS.update()
            .where(
                EXECUTIONS.c.id == execution_id,
                EXECUTIONS.c.status == S.QUEUED.value,
                EXECUTIONS.c.lease.is_(None) | (EXECUTIONS.c.heartbeat_at < stale_before),
            )
            .values(lease=lease, owner=owner, heartbeat_at=datetime.now(UTC))
        )
    return bool(getattr(result, "rowcount", 0))


async def release(engine: AsyncEngine, execution_id: uuid.UUID, lease: uuid.UUID) -> None:
    """Give up a reservation of a queued run this process will not run after all."""
    async with engine.begin() as conn:
        await conn.execute(
            EXECUTIONS.update()
            .where(
                EXECUTIONS.c.id == execution_id,
                EXECUTIONS.c.status == S.QUEUED.value,
                EXECUTIONS.c.lease == lease,
            )
            .values(lease=None, owner=None)
        )


async def request_cancel(engine: AsyncEngine, execution_id: uuid.UUID) -> None:
    """Mark a running run for cancellation and tell every process (its runner stops it)."""
    async with engine.begin() as conn:
        await conn.execute(
            EXECUTIONS.update().where(EXECUTIONS.c.id == execution_id).values(cancel_requested=True)
        )
        await conn.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CANCEL_CHANNEL, "payload": str(execution_id)},
        )


# --- the runner's journal -------------------------------------------------------------------


@dataclass(slots=True)
class _Item:
    seq: int | None  # None: live only (model tokens), never stored
    type: str
    data: dict[str, Any]


@dataclass(slots=True)
class _Snapshot:
    log: RunLog
    items: list[_Item]
    values: dict[str, Any]
    claim: bool
    closing: bool
    audit: list[dict[str, Any]]


class RunLog:
    """One runner's record of one run. Events get their `seq` in the order they happen and
    are written by the journal's next flush; the status is the runner's own, checked against
    the transition table (the lease makes the runner the only one changing it)."""

    def __init__(self, journal: Journal, record: RunRecord, lease: uuid.UUID, owner: str) -> None:
        self.journal = journal
        self.execution_id = record.id
        self.lease = lease
        self.owner = owner
        self.base_seq = record.last_seq
        self.started_at = record.started_at
        self.status = S.QUEUED
        self.steps: list[dict[str, Any]] = []
        self.attempt = record.attempts + 1
        self.lost: LeaseLost | None = None
        self.closed = False
        self._seq = record.last_seq
        self._items: list[_Item] = []
        self._values: dict[str, Any] = {}
        self._audit: list[dict[str, Any]] = []
        self._claim = True
        self._closing = False

    def append(self, type_: str, data: dict[str, Any]) -> int:
        """Record an event; returns its `seq`."""
        self._check()
        self._seq += 1
        self._items.append(_Item(self._seq, type_, data))
        self.journal.dirty(self)
        return self._seq

    def step(self, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        step = {"type": type_, "at": datetime.now(UTC).isoformat(), **data}
        self.steps.append(step)
        self.append(type_, step)
        return step

    def audit(self, row: dict[str, Any]) -> None:
        """An audit row (`audit.record.audit_row`), written with the run's next flush."""
        self._check()
        self._audit.append(row)
        self.journal.dirty(self)

    def token(self, text_: str) -> None:
        """A model token: announced live with the next flush, never stored."""
        if self.lost or self.closed:
            return
        if self._items and self._items[-1].seq is None:
            self._items[-1].data["text"] += text_
        else:
            self._items.append(_Item(None, "token", {"text": text_}))
        self.journal.dirty(self)

    def set_status(self, to: ExecutionStatus, event: dict[str, Any], **values: Any) -> None:
        check_transition(self.status, to)
        self.status = to
        self._values |= {"status": to.value, **values}
        self.append("status", event)

    async def barrier(self) -> None:
        """Wait until everything recorded so far is durable (raises `LeaseLost` when the run
        is no longer this runner's): before a tool call whose effect is not a read."""
        self._check()
        await self.journal.flush_soon(self, urgent=True)
        self._check()

    async def close(
        self,
        to: ExecutionStatus,
        event: dict[str, Any],
        **values: Any,
    ) -> None:
        """End, pause or hand back the run: the last write of this runner (waits for it)."""
        leave = {"lease": None} if not to.terminal else {}
        self.set_status(to, event, **(values | leave))
        self._closing = True
        try:
            await self.journal.flush_soon(self, urgent=True)
        finally:
            self.closed = True
            self.journal.forget(self)
        self._check()

    def _check(self) -> None:
        if self.lost is not None:
            raise self.lost

    def take(self) -> _Snapshot | None:
        if not self._items and not self._values and not self._claim and not self._audit:
            return None
        snapshot = _Snapshot(self, self._items, self._values, self._claim, self._closing,
                             self._audit)  # fmt: skip
        self._items, self._values, self._audit = [], {}, []
        return snapshot

    def restore(self, snapshot: _Snapshot) -> None:
        self._items = snapshot.items + self._items
        self._audit = snapshot.audit + self._audit
        self._values = snapshot.values | self._values
        self._claim = self._claim or snapshot.claim

    def claimed(self) -> None:
        self._claim = False


CancelHandler = Callable[[uuid.UUID], None]


class Journal:
    """Writes every run of this process in batches; one writer, so flushes and heartbeats
    never contend with each other."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        flush_s: float = FLUSH_S,
        on_cancel_requested: CancelHandler | None = None,
        db_wait_s: float = 0.0,
    ) -> None:
        self._engine = engine
        self._flush_s = flush_s
        self._db_wait_s = db_wait_s
        self._on_cancel = on_cancel_requested
        self._logs: dict[uuid.UUID, RunLog] = {}
        self._held: dict[uuid.UUID, uuid.UUID] = {}  # reserved before a log is opened
        self._dirty: dict[uuid.UUID, RunLog] = {}
        self._wake = asyncio.Event()
        self._urgent = False
        self._round: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.flushes = 0

    # leases -------------------------------------------------------------------------------

    def open(self, record: RunRecord, lease: uuid.UUID, owner: str) -> RunLog:
        """Start recording a run this runner is about to claim: `queued -> running`, written
        (and checked) with the run's first flush."""
        run_log = RunLog(self, record, lease, owner)
        self._logs[record.id] = run_log
        self._held.pop(record.id, None)
        run_log.set_status(S.RUNNING, {"status": S.RUNNING.value, "attempt": run_log.attempt})
        return run_log

    def hold(self, execution_id: uuid.UUID, lease: uuid.UUID) -> None:
        """Keep a reservation alive (a queued run waiting for a slot in this process)."""
        self._held[execution_id] = lease

    def release(self, execution_id: uuid.UUID) -> None:
        self._held.pop(execution_id, None)

    def forget(self, run_log: RunLog) -> None:
        if self._logs.get(run_log.execution_id) is run_log:
            del self._logs[run_log.execution_id]

    def leases(self) -> dict[uuid.UUID, uuid.UUID]:
        return {**self._held, **{i: run_log.lease for i, run_log in self._logs.items()}}

    async def beat(self) -> set[uuid.UUID]:
        """The heartbeat: one UPDATE for every lease held here; returns the runs still held
        (the others were taken over and are told so)."""
        held = self.leases()
        if not held:
            return set()
        statement = (
            EXECUTIONS.update()
            .where(
                EXECUTIONS.c.id == any_(bindparam("ids", type_=ARRAY(EXECUTIONS.c.id.type))),
                EXECUTIONS.c.lease == any_(bindparam("leases", type_=ARRAY(EXECUTIONS.c.id.type))),
            )
            .values(heartbeat_at=func.now())
            .returning(EXECUTIONS.c.id)
        )
        async with self._lock, self._engine.begin() as conn:
            alive = set(
                (await conn.execute(statement, {"ids": list(held), "leases": list(held.values())}))
                .scalars()
                .all()
            )
        for execution_id, run_log in list(self._logs.items()):
            # A log still waiting for its first flush is not claimed yet: it holds no row.
            if execution_id not in alive and not run_log._claim and not run_log.closed:
                run_log.lost = LeaseLost("another runner took this run over")
        return alive

    # flushing -----------------------------------------------------------------------------

    def dirty(self, run_log: RunLog) -> None:
        if run_log.execution_id not in self._dirty:
            self._dirty[run_log.execution_id] = run_log
            self._wake.set()

    async def flush_soon(self, run_log: RunLog, *, urgent: bool = False) -> None:
        """Wait for the flush that writes what `run_log` recorded so far."""
        self.dirty(run_log)
        if self._round is None:
            self._round = asyncio.get_running_loop().create_future()
        round_ = self._round
        if urgent:
            self._urgent = True
        self._wake.set()
        await asyncio.shield(round_)

    async def start(self) -> None:
        if self._task is None:
            with patient_checkouts(self._db_wait_s):  # the task's context: it waits, runs go on
                self._task = asyncio.create_task(self._run(), name="pasar-journal")

    async def close(self) -> None:
        """Write what is pending, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._flush_all(), timeout=10)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if not self._urgent:
                # Gather what other runs record in the next moments into the same transaction.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._flush_s):
                        while not self._urgent:
                            self._wake.clear()
                            await self._wake.wait()
            self._wake.clear()
            self._urgent = False
            await self._flush_all()

    async def _flush_all(self) -> None:
        delay = iter(RETRY_S)
        while self._dirty or (self._round is not None and not self._round.done()):
            round_, self._round = self._round, None
            batch = self._take()
            try:
                await self._write(batch)
            except Exception as error:
                self._put_back(batch, round_)
                if is_unavailable(error):
                    wait = next(delay, RETRY_S[-1])
                    log.warning("could not record runs (%s); retrying in %g s",
                                type(error).__name__, wait)  # fmt: skip
                    await asyncio.sleep(wait)
                elif len(batch) > 1:
                    await self._isolate()
                else:
                    self._fail(batch, error)
                continue
            if round_ is not None and not round_.done():
                round_.set_result(None)

    def _take(self) -> list[_Snapshot]:
        batch = [s for s in (run_log.take() for run_log in self._dirty.values()) if s]
        self._dirty = {}
        return batch

    def _put_back(self, batch: list[_Snapshot], round_: asyncio.Future[None] | None) -> None:
        """A flush that failed: its records wait for the next one, and so do its waiters."""
        for snapshot in batch:
            snapshot.log.restore(snapshot)
            self._dirty[snapshot.log.execution_id] = snapshot.log
        newer, self._round = self._round, round_ or self._round
        if newer is not None and round_ is not None and newer is not round_:

            def settle(_: asyncio.Future[None], later: asyncio.Future[None] = newer) -> None:
                if not later.done():
                    later.set_result(None)

            round_.add_done_callback(settle)

    async def _isolate(self) -> None:
        """A batch that failed for a reason other than the database being away: write each
        run alone, so one run that cannot be recorded does not hold back the others."""
        for run_log in list(self._dirty.values()):
            self._dirty.pop(run_log.execution_id, None)
            taken = run_log.take()
            if taken is None:
                continue
            try:
                await self._write([taken])
            except Exception as error:
                run_log.restore(taken)
                if is_unavailable(error):
                    self._dirty[run_log.execution_id] = run_log
                    return
                self._fail([taken], error)

    def _fail(self, batch: list[_Snapshot], error: Exception) -> None:
        for snapshot in batch:
            log.error("execution %s could not be recorded: %s", snapshot.log.execution_id,
                      type(error).__name__)  # fmt: skip
            snapshot.log.lost = LeaseLost(f"the run could not be recorded ({type(error).__name__})")
            snapshot.log.take()  # what it recorded is dropped with it
            self._dirty.pop(snapshot.log.execution_id, None)

    async def _write(self, batch: list[_Snapshot]) -> None:
        if not batch:
            return
        ids = sorted(snapshot.log.execution_id for snapshot in batch)
        async with self._lock, self._engine.begin() as conn:
            rows = {
                row.id: row
                for row in await conn.execute(
                    select(EXECUTIONS.c.id, EXECUTIONS.c.status, EXECUTIONS.c.lease,
                           EXECUTIONS.c.last_seq, EXECUTIONS.c.attempts,
                           EXECUTIONS.c.cancel_requested, EXECUTIONS.c.started_at)
                    .where(EXECUTIONS.c.id == any_(bindparam("ids", type_=ARRAY(EXECUTIONS.c.id.type))))
                    .order_by(EXECUTIONS.c.id)
                    .with_for_update(),
                    {"ids": ids},
                )
            }  # fmt: skip
            updates: dict[frozenset[str], list[dict[str, Any]]] = {}
            events: list[dict[str, Any]] = []
            audit_rows: list[dict[str, Any]] = []
            payloads: list[str] = []
            written: list[_Snapshot] = []
            for snapshot in batch:
                run_log, row = snapshot.log, rows.get(snapshot.log.execution_id)
                values = self._row_values(snapshot, row)
                if values is None or row is None:
                    run_log.lost = LeaseLost("the run is no longer this runner's")
                    continue
                if row.cancel_requested and self._on_cancel is not None and not snapshot.closing:
                    self._on_cancel(run_log.execution_id)
                written.append(snapshot)
                audit_rows.extend(snapshot.audit)
                stored = [item for item in snapshot.items if item.seq is not None]
                if stored:
                    values["last_seq"] = stored[-1].seq
                if values:
                    values["_id"] = run_log.execution_id
                    updates.setdefault(frozenset(values), []).append(values)
                for item in snapshot.items:
                    if item.seq is not None:
                        events.append({"execution_id": run_log.execution_id, "seq": item.seq,
                                       "type": item.type, "data": item.data})  # fmt: skip
                    payloads.append(notification(run_log.execution_id, item.seq, item.type,
                                                 item.data))  # fmt: skip
            for keys, params in updates.items():
                columns: dict[str, Any] = {key: bindparam(key) for key in keys if key != "_id"}
                statement = (
                    EXECUTIONS.update().where(EXECUTIONS.c.id == bindparam("_id")).values(columns)
                )
                await conn.execute(statement, params)
            await _insert_events(conn, events)
            await write_audit_rows(conn, audit_rows)
            await _announce(conn, payloads)
        self.flushes += 1
        for snapshot in written:
            if snapshot.claim:
                snapshot.log.claimed()

    @staticmethod
    def _row_values(snapshot: _Snapshot, row: Any) -> dict[str, Any] | None:
        """The columns to write for this run, or None when its runner may not write."""
        run_log = snapshot.log
        if row is None:
            return None
        values = dict(snapshot.values)
        if snapshot.claim:
            claimable = (
                row.status == S.QUEUED.value
                and row.lease in (None, run_log.lease)
                and row.last_seq == run_log.base_seq
            )
            if not claimable:
                return None
            started = row.started_at or datetime.now(UTC)
            run_log.started_at = started
            values = {"status": S.RUNNING.value, "attempts": row.attempts + 1,
                      "started_at": started, "heartbeat_at": datetime.now(UTC)} | values  # fmt: skip
            values.setdefault("lease", run_log.lease)
            values["owner"] = run_log.owner
            for item in snapshot.items:
                if item.type == "status" and item.data.get("status") == S.RUNNING.value:
                    item.data["attempt"] = row.attempts + 1
                    break
            run_log.attempt = row.attempts + 1
        elif row.lease != run_log.lease:
            return None
        return values
