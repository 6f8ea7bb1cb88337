"""Per-organisation retention: an organisation's admins say how many days its finished runs
(executions with their events) are kept; None keeps them. A job in every serving process
deletes what is older, in bounded batches (each its own short transaction), every
`retention_interval_s`; several processes doing it at once delete disjoint rows or nothing.
Each pass that deleted something leaves a `retention.applied` audit row per organisation.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from pasar_core.audit import record as audit
from pasar_core.audit.record import SYSTEM, Action, Actor
from pasar_core.executions.status import ExecutionStatus
from pasar_core.services import Services
from pasar_core.storage.models import Execution, Organisation

log = logging.getLogger("pasar.privacy.retention")
BATCH = 500
MAX_DAYS = 36_500
TERMINAL = [s.value for s in ExecutionStatus if s.terminal]


class RetentionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    execution_days: int | None = Field(default=None, ge=1, le=MAX_DAYS)
    """Days finished runs and their events are kept; null keeps them."""


async def retention_of(services: Services, organisation_id: uuid.UUID) -> RetentionInput:
    async with services.sessionmaker() as session:
        days = await session.scalar(
            select(Organisation.retention_days).where(Organisation.id == organisation_id)
        )
    return RetentionInput(execution_days=days)


async def set_retention(
    services: Services, organisation_id: uuid.UUID, data: RetentionInput, actor: Actor
) -> RetentionInput:
    async with services.sessionmaker.begin() as session:
        previous = await session.scalar(
            update(Organisation)
            .where(Organisation.id == organisation_id)
            .values(retention_days=data.execution_days)
            .returning(Organisation.retention_days)
        )
        await audit.record(session, Action.RETENTION_CHANGED, actor,
                           target=("organisation", organisation_id),
                           details={"execution_days": data.execution_days,
                                    "previous": previous})  # fmt: skip
    return data


async def apply_retention(engine: AsyncEngine, *, now: datetime | None = None,
                          batch: int = BATCH) -> dict[uuid.UUID, int]:  # fmt: skip
    """One pass over every organisation with a policy: deletes its finished runs older than
    the policy, `batch` rows per transaction; returns how many per organisation."""
    moment = now or datetime.now(UTC)
    async with engine.connect() as conn:
        policies = (
            await conn.execute(
                select(Organisation.id, Organisation.retention_days).where(
                    Organisation.retention_days.is_not(None)
                )
            )
        ).all()
    deleted: dict[uuid.UUID, int] = {}
    for organisation_id, days in policies:
        assert days is not None  # the statement's condition
        cutoff = moment - timedelta(days=days)
        total = 0
        while True:
            old = (
                select(Execution.id)
                .where(Execution.organisation_id == organisation_id,
                       Execution.status.in_(TERMINAL), Execution.created_at < cutoff)
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
                break
        if total:
            deleted[organisation_id] = total
    return deleted


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

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def run_once(self) -> None:
        deleted = await apply_retention(self._engine)
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
