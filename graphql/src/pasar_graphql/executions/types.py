"""GraphQL types for executions and their events."""

from __future__ import annotations

from datetime import datetime

import strawberry
from pasar_core.executions.events import Event
from pasar_core.executions.service import ExecutionView
from strawberry.scalars import JSON


@strawberry.type(description="One run of an agent.")
class Execution:
    id: strawberry.ID
    agent_id: strawberry.ID
    status: str = strawberry.field(
        description="queued, running, succeeded, failed, limit_exceeded or cancelled."
    )
    input: JSON
    output: JSON | None
    error: str | None
    steps: JSON = strawberry.field(description="Model calls, tool calls and results, in order.")
    duration_ms: int | None
    cached: bool
    executor: str
    thread_id: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    agent_version: int | None = strawberry.field(
        description="The agent's config version the run ran."
    )
    schedule_id: strawberry.ID | None = strawberry.field(
        description="The schedule that fired the run (null: a caller started it)."
    )
    auth_url: str | None = strawberry.field(
        description="While awaiting_authorization: the consent link that resumes the run."
    )
    pending_approval: JSON | None = strawberry.field(
        description="While awaiting_approval: the first of pendingApprovals."
    )
    pending_approvals: JSON | None = strawberry.field(
        description="While awaiting_approval: every call waiting for your decision (tool, args, "
        "tool_call_id, args_hash)."
    )
    approval_expires_at: datetime | None = strawberry.field(
        description="While awaiting_approval: when the run ends without a decision."
    )

    @classmethod
    def of(cls, view: ExecutionView) -> Execution:
        return cls(
            id=strawberry.ID(str(view.id)),
            agent_id=strawberry.ID(str(view.agent_id)),
            status=view.status,
            input=JSON(view.input),
            output=JSON(view.output) if view.output is not None else None,
            error=view.error,
            steps=JSON(view.steps),
            duration_ms=view.duration_ms,
            cached=view.cached,
            executor=view.executor,
            thread_id=view.thread_id,
            attempts=view.attempts,
            created_at=view.created_at,
            started_at=view.started_at,
            finished_at=view.finished_at,
            agent_version=view.agent_version,
            schedule_id=strawberry.ID(str(view.schedule_id)) if view.schedule_id else None,
            auth_url=view.auth_url,
            pending_approval=JSON(view.pending_approval) if view.pending_approval else None,
            pending_approvals=JSON(view.pending_approvals) if view.pending_approvals else None,
            approval_expires_at=view.approval_expires_at,
        )


@strawberry.type(description="A page of executions, newest first.")
class ExecutionPage:
    nodes: list[Execution]
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")
    has_next_page: bool


@strawberry.type(description="Something that happened in a run; `seq` orders stored events.")
class ExecutionEvent:
    seq: int | None = strawberry.field(description="Null for live-only events (tokens).")
    type: str = strawberry.field(
        description="status, recall, plan, model_call, tool_call, tool_result, approval, token."
    )
    data: JSON

    @classmethod
    def of(cls, event: Event) -> ExecutionEvent:
        return cls(seq=event.seq, type=event.type, data=JSON(event.data))


@strawberry.input(description="How to run: the same fields as REST `parameters`.")
class RunParametersInput:
    wait: bool = True
    timeout_s: float = 30
    thread_id: str | None = None
    webhook_url: str | None = None
    executor: str | None = None
