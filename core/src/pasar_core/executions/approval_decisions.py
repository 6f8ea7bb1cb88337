"""Checking a decision request against the pause it answers (see `executions.decisions`).

Every refusal is typed and changes nothing: a call decided before (APPROVAL_ALREADY_DECIDED: a
decision is used once), a run or call that waits on no approval (APPROVAL_NOT_PENDING), a hash
other than the one shown (APPROVAL_STALE), pending calls left undecided (APPROVAL_INCOMPLETE),
edited arguments the tool's input schema refuses (TOOL_INPUT_INVALID), a pause that outlived
`approval_ttl_s` (APPROVAL_EXPIRED; the run ends `failed`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from pasar_core.errors import (
    ApprovalAlreadyDecided,
    ApprovalExpired,
    ApprovalIncomplete,
    ApprovalNotPending,
    ApprovalStale,
    ToolInputInvalid,
)
from pasar_core.executions import store
from pasar_core.executions.decisions import (
    AWAITING_APPROVAL,
    ApprovalDecision,
    CallDecision,
    decisions_of,
    pending_of,
)
from pasar_core.executions.events import Event
from pasar_core.executions.status import ExecutionStatus
from pasar_core.registry import Registry
from pasar_core.schemas import validation_errors

S = ExecutionStatus
EXPIRED = "APPROVAL_EXPIRED: nobody decided on the pending tool calls in time"
BATCH = 200


@dataclass(slots=True)
class PauseState:
    """What a run's events say about its approvals."""

    pending: list[dict[str, Any]] = field(default_factory=list)
    decided: set[tuple[str, str | None]] = field(default_factory=set)
    """(tool_call_id, args_hash) of every call decided so far (no hash: the older form)."""

    def was_decided(self, item: CallDecision) -> bool:
        return bool({(item.tool_call_id, item.args_hash), (item.tool_call_id, None)} & self.decided)


def pause_state(events: Iterable[Event]) -> PauseState:
    state = PauseState()
    for event in events:
        if event.type == "status" and event.data.get("status") == AWAITING_APPROVAL:
            state.pending = pending_of(event.data)
        elif event.type == "approval":
            hashes = {str(call["tool_call_id"]): call.get("args_hash") for call in state.pending}
            hashes |= {str(item["tool_call_id"]): item.get("args_hash")
                       for item in event.data.get("decisions", [])}  # fmt: skip
            state.decided |= {
                (call_id, hashes.get(call_id)) for call_id in decisions_of(event.data)
            }
    return state


def check_decisions(
    request: ApprovalDecision, state: PauseState, status: str, expired: bool
) -> list[CallDecision]:
    """The request as one decision per pending call, or the typed reason it is refused."""
    named = [item.tool_call_id for item in request.decisions or []]
    waiting = {(str(call["tool_call_id"]), call.get("args_hash")) for call in state.pending}
    if status != S.AWAITING_APPROVAL.value:
        waiting = set()
    again = [item.tool_call_id for item in request.decisions or []
             if state.was_decided(item) and (item.tool_call_id, item.args_hash) not in waiting]  # fmt: skip
    if again:
        raise ApprovalAlreadyDecided(
            "a decision was already made on this call; each decision is used once",
            details={"tool_call_ids": again},
        )
    if status == S.FAILED.value and expired:
        raise ApprovalExpired("the approval expired; the run ended without it")
    if status != S.AWAITING_APPROVAL.value:
        raise ApprovalNotPending("the execution is not waiting for an approval")
    if expired:
        raise ApprovalExpired("the approval expired; the run ended without it")
    pending = {str(call["tool_call_id"]): call for call in state.pending}
    if request.decisions is None:
        if len(pending) != 1:
            raise ApprovalIncomplete(
                "several calls wait: send decisions, one per tool_call_id with its args_hash",
                details={"pending": sorted(pending)},
            )
        (only,) = pending.values()
        assert request.decision is not None  # the model allows no third form
        single = {"tool_call_id": str(only["tool_call_id"]), "decision": request.decision,
                  "args_hash": str(only.get("args_hash") or "0" * 64), "note": request.note}  # fmt: skip
        return [CallDecision.model_validate(single)]
    unknown = [call_id for call_id in named if call_id not in pending]
    if unknown:
        raise ApprovalNotPending(
            "the execution does not wait on these calls", details={"tool_call_ids": unknown}
        )
    stale = [item.tool_call_id for item in request.decisions
             if item.args_hash != pending[item.tool_call_id].get("args_hash")]  # fmt: skip
    if stale:
        raise ApprovalStale(
            "the arguments these decisions were made for are not the ones the calls wait with",
            details={"tool_call_ids": stale},
        )
    missing = sorted(set(pending) - set(named))
    if missing:
        raise ApprovalIncomplete(
            "every pending call needs a decision", details={"tool_call_ids": missing}
        )
    return list(request.decisions)


def check_edits(registry: Registry, decisions: list[CallDecision], state: PauseState) -> None:
    """Edited arguments must fit the tool's input schema (checked before anything changes)."""
    tools = {str(call["tool_call_id"]): str(call["tool"]) for call in state.pending}
    for item in decisions:
        if item.decision != "edit":
            continue
        tool_id = tools[item.tool_call_id]
        problems = validation_errors(registry.tool(tool_id).input_validator, item.args)
        if problems:
            raise ToolInputInvalid(
                f"invalid edited input for {tool_id}: {problems[0]['path']}: "
                f"{problems[0]['message']}",
                details={"tool": tool_id, "tool_call_id": item.tool_call_id, "errors": problems},
            )


def approval_event(decisions: list[CallDecision], state: PauseState) -> dict[str, Any]:
    tools = {str(call["tool_call_id"]): call["tool"] for call in state.pending}
    return {
        "decisions": [
            {"tool_call_id": item.tool_call_id, "tool": tools[item.tool_call_id],
             "decision": item.decision, "args_hash": item.args_hash, "note": item.note}
            | ({"args": item.args} if item.decision == "edit" else {})
            for item in decisions
        ]
    }  # fmt: skip


async def expire(engine: AsyncEngine, execution_id: uuid.UUID) -> bool:
    """End a run whose approval expired (`failed`, APPROVAL_EXPIRED); True when this did."""
    now = datetime.now(UTC)
    ended = await store.transition(
        engine, execution_id, S.FAILED, only_from={S.AWAITING_APPROVAL},
        event=store.end_event(S.FAILED, error=EXPIRED),
        values={"error": EXPIRED, "approval_expires_at": None},
        when=lambda row: row.approval_expires_at is not None and row.approval_expires_at <= now,
    )  # fmt: skip
    return ended is not None


async def expire_due(engine: AsyncEngine) -> int:
    """End every run whose approval expired (the reconciler's sweep); how many it ended."""
    table = store.EXECUTIONS
    async with engine.connect() as conn:
        due = (
            await conn.execute(
                select(table.c.id)
                .where(
                    table.c.status == S.AWAITING_APPROVAL.value,
                    table.c.approval_expires_at <= datetime.now(UTC),
                )
                .limit(BATCH)
            )
        ).scalars()
        ids = list(due)
    return sum([await expire(engine, execution_id) for execution_id in ids])
