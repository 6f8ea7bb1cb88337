"""The runs' hot reads as single statements (pasar_core.storage.reads): one execution, or one
page of an agent's executions, each with the events a view needs, in one round trip. Both are
the caller's own runs in the organisation the caller acts in (another organisation's run is
not found), and a page's agent is one the caller may see (their own or shared with them: the
policy table's `agents.executions.list` allows every role on both).

A finished run keeps its steps on its row; a run still going (or paused) has them only as
events, so the events are aggregated in the same statement, for those rows only. Listing an
agent's runs checks the agent's owner in the same statement: no row at all means the agent is
not the caller's; one row without an execution means an empty page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, case, func, literal_column, not_, or_, select, true
from sqlalchemy.dialects.postgresql import aggregate_order_by

from pasar_core.executions.events import TERMINAL_STATUSES
from pasar_core.storage.models import Agent, Execution, ExecutionEvent
from pasar_core.storage.reads import CompiledRead


def _constant(text: str) -> Any:
    """A constant written into the SQL (a compiled read binds only its named parameters)."""
    return literal_column("'" + text.replace("'", "''") + "'")


_EVENTS = (
    select(
        func.json_agg(
            aggregate_order_by(
                func.json_build_object(
                    _constant("type"), ExecutionEvent.type, _constant("data"), ExecutionEvent.data
                ),
                ExecutionEvent.seq,
            )
        )
    )
    .where(ExecutionEvent.execution_id == Execution.id)
    .scalar_subquery()
)
_NEEDS_EVENTS = or_(
    Execution.status.not_in([_constant(status) for status in sorted(TERMINAL_STATUSES)]),
    and_(func.jsonb_array_length(Execution.steps) == literal_column("0"), not_(Execution.cached)),
)
_COLUMNS = (
    Execution.id, Execution.agent_id, Execution.status, Execution.input, Execution.output,
    Execution.error, Execution.steps, Execution.duration_ms, Execution.cached,
    Execution.executor, Execution.thread_id, Execution.attempts, Execution.created_at,
    Execution.started_at, Execution.finished_at, Execution.agent_version, Execution.schedule_id,
    case((_NEEDS_EVENTS, _EVENTS)).label("events"),
)  # fmt: skip

READ_EXECUTION = CompiledRead(
    select(*_COLUMNS).where(
        Execution.id == bindparam("execution_id"),
        Execution.user_id == bindparam("user_id"),
        Execution.organisation_id == bindparam("organisation_id"),
    )
)


def _page(after: bool) -> CompiledRead:
    owned = (
        select(Agent.id)
        .where(
            Agent.id == bindparam("agent_id"),
            Agent.organisation_id == bindparam("organisation_id"),
            or_(Agent.owner_id == bindparam("user_id"), Agent.shared_role.is_not(None)),
        )
        .cte("owned")
    )
    query = select(*_COLUMNS).where(
        Execution.agent_id == owned.c.id, Execution.user_id == bindparam("user_id")
    )
    if after:
        query = query.where(
            (Execution.created_at < bindparam("after_created_at"))
            | (
                (Execution.created_at == bindparam("after_created_at"))
                & (Execution.id < bindparam("after_id"))
            )
        )
    page = (
        query.order_by(Execution.created_at.desc(), Execution.id.desc())
        .limit(bindparam("limit"))
        .lateral("page")
    )
    return CompiledRead(
        select(owned.c.id.label("owned_agent"), page)
        .select_from(owned.outerjoin(page, true()))
        .order_by(page.c.created_at.desc(), page.c.id.desc())
    )


READ_FIRST_PAGE = _page(after=False)
READ_PAGE_AFTER = _page(after=True)


def executions_of(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]] | None:
    """The executions of a page's rows; None when the agent is not the caller's."""
    if not rows:
        return None
    return [row for row in rows if row["id"] is not None]
