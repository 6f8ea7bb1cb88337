"""Per-organisation retention: an organisation's admins say how many days its finished runs
(executions with their events, counted from when they finished: a run that lasts or waits on an
approval is never cut in its life), its agents' knowledge (embeddings) and stored files are
kept; None keeps them. Files are their user's (pasar_core.objects), so the file policy that
applies to them is their user's personal organisation's. A job in every serving process deletes
what is older, in bounded batches (each its own short transaction), every
`retention_interval_s`; several processes doing it at once delete disjoint rows or nothing.
Each pass that deleted something leaves a `retention.applied` audit row per organisation.
Run events and embeddings are partitioned by month (pasar_core.storage.partitions): a pass first
creates the coming months' partitions and drops each past month nothing in which is kept any
longer, as one DROP instead of its rows' deletes.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from pasar_core.audit import record as audit
from pasar_core.audit.record import SYSTEM, Action, Actor
from pasar_core.errors import ValidationFailed
from pasar_core.executions.status import ExecutionStatus
from pasar_core.objects import ObjectStore
from pasar_core.services import Services
from pasar_core.storage.models import Agent, Embedding, Execution, Organisation
from pasar_core.storage.partitions import drop_expired_partitions, ensure_partitions

log = logging.getLogger("pasar.privacy.retention")
BATCH = 500
FILE_PAGE = 1000
MAX_DAYS = 36_500
TERMINAL = [s.value for s in ExecutionStatus if s.terminal]
_Days = Field(default=None, ge=1, le=MAX_DAYS)


class RetentionInput(BaseModel):
    """The policy; a field left out of a change keeps its value."""

    model_config = ConfigDict(extra="forbid")

    execution_days: int | None = _Days
    """Days finished runs and their events are kept after they finished; null keeps them."""
    knowledge_days: int | None = _Days
    """Days the knowledge (embeddings) of the organisation's agents is kept; null keeps it."""
    file_days: int | None = _Days
    """Days its user's stored files are kept: a personal organisation's only (files are their
    user's, not a team's); null keeps them."""


COLUMNS = {"execution_days": "retention_days", "knowledge_days": "knowledge_days",
           "file_days": "file_days"}  # fmt: skip


async def retention_of(services: Services, organisation_id: uuid.UUID) -> RetentionInput:
    async with services.sessionmaker() as session:
        row = (
            await session.execute(
                select(Organisation.retention_days, Organisation.knowledge_days,
                       Organisation.file_days).where(Organisation.id == organisation_id)
            )
        ).one()  # fmt: skip
    return RetentionInput(execution_days=row[0], knowledge_days=row[1], file_days=row[2])


async def set_retention(
    services: Services, organisation_id: uuid.UUID, data: RetentionInput, actor: Actor
) -> RetentionInput:
    changes = {COLUMNS[name]: getattr(data, name) for name in data.model_fields_set}
    async with services.sessionmaker.begin() as session:
        personal = await session.scalar(
            select(Organisation.personal).where(Organisation.id == organisation_id)
        )
        if data.file_days is not None and not personal:
            raise ValidationFailed(
                "file_days applies only to a personal organisation (stored files are their "
                "user's, not a team's): set it in your personal organisation"
            )
        previous = await retention_of(services, organisation_id)
        if changes:
            await session.execute(
                update(Organisation).where(Organisation.id == organisation_id).values(**changes)
            )
        saved = previous.model_copy(update={n: getattr(data, n) for n in data.model_fields_set})
        await audit.record(session, Action.RETENTION_CHANGED, actor,
                           target=("organisation", organisation_id),
                           details={**saved.model_dump(),
                                    "previous": previous.model_dump()})  # fmt: skip
    return saved


async def _batches(engine: AsyncEngine, organisation_id: uuid.UUID, details: dict[str, Any],
                   statement: Callable[[], Any], count_key: str) -> int:  # fmt: skip
    """Run a deleting `statement()` until it deletes less than a batch; audit each batch."""
    total = 0
    while True:
        async with engine.begin() as conn:
            gone = len((await conn.execute(statement())).all())
            if gone:
                await audit.record(
                    conn, Action.RETENTION_APPLIED,
                    Actor(None, SYSTEM.via, organisation_id=organisation_id),
                    target=("organisation", organisation_id),
                    details={count_key: gone, **details},
                )  # fmt: skip
        total += gone
        if gone < BATCH:
            return total


async def apply_retention(engine: AsyncEngine, *, now: datetime | None = None,
                          batch: int = BATCH,
                          files: ObjectStore | None = None) -> dict[uuid.UUID, int]:  # fmt: skip
    """One pass over every organisation with a policy: deletes its finished runs, knowledge and
    (`files` given) files older than the policy, `batch` rows per transaction; returns how many
    runs per organisation."""
    moment = now or datetime.now(UTC)
    await _drop_partitions(engine, moment)
    async with engine.connect() as conn:
        policies = (
            await conn.execute(
                select(Organisation.id, Organisation.retention_days, Organisation.knowledge_days,
                       Organisation.file_days, Organisation.personal, Organisation.created_by)
                .where((Organisation.retention_days.is_not(None))
                       | Organisation.knowledge_days.is_not(None)
                       | Organisation.file_days.is_not(None))
            )
        ).all()  # fmt: skip
    deleted: dict[uuid.UUID, int] = {}
    for organisation_id, days, knowledge_days, file_days, personal, owner in policies:
        if days is not None:
            total = await _delete_runs(engine, organisation_id, days, moment, batch)
            if total:
                deleted[organisation_id] = total
        if knowledge_days is not None:
            await _delete_knowledge(engine, organisation_id, knowledge_days, moment)
        if file_days is not None and personal and owner is not None and files is not None:
            await _delete_files(engine, files, organisation_id, owner, file_days, moment)
    return deleted


async def _drop_partitions(engine: AsyncEngine, moment: datetime) -> dict[str, int]:
    """Whole past months whose every row has expired go first, as one DROP each (the row
    deletes below then find nothing there); each dropped partition leaves an audit row."""
    dropped = await drop_expired_partitions(engine, moment)
    if dropped:
        async with engine.begin() as conn:
            for name, rows in dropped.items():
                await audit.record(conn, Action.RETENTION_APPLIED, SYSTEM,
                                   target=("partition", name),
                                   details={"partition_dropped": name, "rows": rows})  # fmt: skip
        log.info("retention dropped partition(s) %s", ", ".join(dropped))
    return dropped


async def _delete_runs(engine: AsyncEngine, organisation_id: uuid.UUID, days: int,
                       moment: datetime, batch: int) -> int:  # fmt: skip
    cutoff = moment - timedelta(days=days)
    finished = func.coalesce(Execution.finished_at, Execution.created_at)
    total = 0
    while True:
        old = (
            select(Execution.id)
            .where(Execution.organisation_id == organisation_id,
                   Execution.status.in_(TERMINAL), finished < cutoff)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )  # fmt: skip
        async with engine.begin() as conn:
            gone = len((await conn.execute(
                delete(Execution).where(Execution.id.in_(old)).returning(Execution.id)
            )).all())  # fmt: skip
            if gone:
                await audit.record(
                    conn, Action.RETENTION_APPLIED,
                    Actor(None, SYSTEM.via, organisation_id=organisation_id),
                    target=("organisation", organisation_id),
                    details={"executions_deleted": gone, "execution_days": days},
                )  # fmt: skip
        total += gone
        if gone < batch:
            return total


async def _delete_knowledge(engine: AsyncEngine, organisation_id: uuid.UUID, days: int,
                            moment: datetime) -> int:  # fmt: skip
    cutoff = moment - timedelta(days=days)
    agents = select(Agent.id).where(Agent.organisation_id == organisation_id)

    def statement() -> Any:
        old = (
            select(Embedding.id)
            .where(Embedding.agent_id.in_(agents), Embedding.created_at < cutoff)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
        return delete(Embedding).where(Embedding.id.in_(old)).returning(Embedding.id)

    return await _batches(engine, organisation_id, {"knowledge_days": days}, statement,
                          "embeddings_deleted")  # fmt: skip


async def _delete_files(engine: AsyncEngine, files: ObjectStore, organisation_id: uuid.UUID,
                        user_id: uuid.UUID, days: int, moment: datetime) -> int:  # fmt: skip
    cutoff = moment - timedelta(days=days)
    gone = 0
    for item in await files.list(str(user_id), "", limit=FILE_PAGE * 100):
        if item.modified < cutoff:
            gone += int(await files.delete(str(user_id), item.key))
    if gone:
        async with engine.begin() as conn:
            await audit.record(
                conn, Action.RETENTION_APPLIED,
                Actor(None, SYSTEM.via, organisation_id=organisation_id),
                target=("organisation", organisation_id),
                details={"files_deleted": gone, "file_days": days},
            )  # fmt: skip
    return gone


async def sweep(engine: AsyncEngine) -> dict[str, int]:
    """The periodic housekeeping beside retention: expired idempotency keys and lapsed
    invitations (nobody's request would ever delete those of a caller who never returns)."""
    from pasar_core.idempotency import sweep_expired
    from pasar_core.organisations.invitations import sweep_lapsed

    return {"idempotency_keys": await sweep_expired(engine),
            "invitations": await sweep_lapsed(engine)}  # fmt: skip


class RetentionJob:
    """What a serving process does every `interval_s` (the reconciler's loop style): apply the
    retention policies, then `sweep`."""

    def __init__(self, engine: AsyncEngine, files: ObjectStore | None = None) -> None:
        self._engine = engine
        self._files = files

    async def run_once(self) -> None:
        created = await ensure_partitions(self._engine, datetime.now(UTC))
        if created:
            log.info("created partition(s) %s", ", ".join(created))
        deleted = await apply_retention(self._engine, files=self._files)
        if deleted:
            log.info("retention deleted %d run(s)", sum(deleted.values()))
        swept = await sweep(self._engine)
        if any(swept.values()):
            log.info("swept %s", ", ".join(f"{n} {what}" for what, n in swept.items() if n))

    async def run_forever(self, interval_s: float, stopped: asyncio.Event) -> None:
        while not stopped.is_set():
            try:
                await self.run_once()
            except Exception as error:
                log.warning("applying retention failed: %s", type(error).__name__)
            try:
                async with asyncio.timeout(interval_s):
                    await stopped.wait()
            except TimeoutError:
                pass
