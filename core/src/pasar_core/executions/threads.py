"""An agent's threads, as their caller sees them: list, read (the turns) and delete.

A thread belongs to (agent, user, thread id): its memory is replayed from the user's own
executions of the agent with that thread id (`RunContext.thread_history`), so another agent's
or another user's thread is NOT_FOUND, exactly like one that never existed. Deleting a thread
deletes those executions (and their events), so the next run on that id starts empty."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select

from pasar_core.accounts.principal import Principal
from pasar_core.agents.service import owned_agent, parse_agent_id
from pasar_core.audit import record as audit
from pasar_core.audit.record import Action, Actor
from pasar_core.errors import Conflict, NotFound
from pasar_core.executions.status import TERMINAL
from pasar_core.services import Services
from pasar_core.storage.models import Execution

MAX_PAGE = 200
_TERMINAL = sorted(status.value for status in TERMINAL)


@dataclass(frozen=True, slots=True)
class ThreadView:
    thread_id: str
    turns: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True, slots=True)
class TurnView:
    execution_id: uuid.UUID
    status: str
    input: Any
    output: dict[str, Any] | None
    created_at: datetime


def _missing(thread_id: str) -> NotFound:
    return NotFound(f"no thread {thread_id[:200]!r} on this agent")


def _mine(agent_id: uuid.UUID, principal: Principal) -> tuple[Any, ...]:
    return (Execution.agent_id == agent_id, Execution.user_id == principal.user_id,
            Execution.organisation_id == principal.organisation_id)  # fmt: skip


async def list_threads(
    services: Services,
    principal: Principal,
    agent_id: str | uuid.UUID,
    *,
    limit: int = 50,
    offset: int = 0,
) -> list[ThreadView]:
    """The caller's threads on the agent, most recently used first."""
    async with services.sessionmaker() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.threads.list"
        )
        last = func.max(Execution.created_at)
        rows = await session.execute(
            select(Execution.thread_id, func.count(), func.min(Execution.created_at), last)
            .where(*_mine(agent.id, principal), Execution.thread_id.is_not(None))
            .group_by(Execution.thread_id)
            .order_by(last.desc(), Execution.thread_id)
            .limit(max(1, min(limit, MAX_PAGE)))
            .offset(max(0, offset))
        )
        return [ThreadView(str(thread), count, first, newest)
                for thread, count, first, newest in rows.all()]  # fmt: skip


async def read_thread(
    services: Services,
    principal: Principal,
    agent_id: str | uuid.UUID,
    thread_id: str,
    *,
    limit: int = 50,
    offset: int = 0,
) -> list[TurnView]:
    """The thread's turns, oldest first (every run, whatever its status: only succeeded ones
    are replayed as memory)."""
    async with services.sessionmaker() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.threads.read"
        )
        columns = (Execution.id, Execution.status, Execution.input, Execution.output,
                   Execution.created_at)  # fmt: skip
        statement = (
            select(*columns)
            .where(*_mine(agent.id, principal), Execution.thread_id == thread_id)
            .order_by(Execution.created_at, Execution.id)
            .limit(max(1, min(limit, MAX_PAGE)))
            .offset(max(0, offset))
        )
        rows = (await session.execute(statement)).all()
    if not rows and offset == 0:
        raise _missing(thread_id)
    return [TurnView(*row) for row in rows]


async def delete_thread(
    services: Services, principal: Principal, agent_id: str | uuid.UUID, thread_id: str
) -> int:
    """Delete the thread's runs (their events go with them); the number deleted. A run of
    the thread still going refuses it (CONFLICT), deleting nothing: cancel it first."""
    async with services.sessionmaker.begin() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.threads.delete"
        )
        mine = (*_mine(agent.id, principal), Execution.thread_id == thread_id)
        statuses = (
            await session.scalars(select(Execution.status).where(*mine).with_for_update())
        ).all()
        if not statuses:
            raise _missing(thread_id)
        if any(status not in _TERMINAL for status in statuses):
            raise Conflict(f"a run of thread {thread_id[:200]!r} is still going; cancel it first")
        await session.execute(delete(Execution).where(*mine))
        await audit.record(session, Action.THREAD_DELETED, Actor.of(principal),
                           target=("agent", agent.id),
                           details={"turns": len(statuses)})  # fmt: skip
        return len(statuses)
