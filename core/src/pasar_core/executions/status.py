"""The statuses of an execution and the transitions allowed between them.

`executions.store` is the only writer of an execution's status and checks every change against
`TRANSITIONS`; anything else is an `IllegalTransition`. A run starts `queued` (or `succeeded`
when the result cache answers at once) and ends in one of the terminal statuses, exactly once.
"""

from __future__ import annotations

from enum import StrEnum

from pasar_core.errors import Conflict


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_AUTHORIZATION = "awaiting_authorization"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    LIMIT_EXCEEDED = "limit_exceeded"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def paused(self) -> bool:
        return self in PAUSED


S = ExecutionStatus
TERMINAL = frozenset({S.SUCCEEDED, S.FAILED, S.LIMIT_EXCEEDED, S.CANCELLED})
PAUSED = frozenset({S.AWAITING_APPROVAL, S.AWAITING_AUTHORIZATION})
CANCEL_REQUESTED = "pasar-cancel"
"""The cancel message of a run task someone cancelled."""
HANDOFF = "pasar-handoff"
"""The cancel message of a run task handed back to the queue (drain)."""
INITIAL = frozenset({S.QUEUED, S.SUCCEEDED})
"""What a new execution may start as (`succeeded`: answered from the result cache)."""

TRANSITIONS: dict[ExecutionStatus, frozenset[ExecutionStatus]] = {
    # Claimed by a runner; cancelled or failed before it starts (cancel, an executor that could
    # not take it, too many interrupted attempts).
    S.QUEUED: frozenset({S.RUNNING, S.CANCELLED, S.FAILED}),
    # Ends, pauses, or goes back to the queue (its process drained or died; resumed elsewhere).
    S.RUNNING: frozenset(
        {
            S.SUCCEEDED,
            S.FAILED,
            S.LIMIT_EXCEEDED,
            S.CANCELLED,
            S.AWAITING_APPROVAL,
            S.AWAITING_AUTHORIZATION,
            S.QUEUED,
        }
    ),
    # A decision (approval) or a consent (authorization) queues it again; or it is cancelled;
    # an approval nobody gave within `approval_ttl_s` fails it (APPROVAL_EXPIRED).
    S.AWAITING_APPROVAL: frozenset({S.QUEUED, S.CANCELLED, S.FAILED}),
    S.AWAITING_AUTHORIZATION: frozenset({S.QUEUED, S.CANCELLED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.LIMIT_EXCEEDED: frozenset(),
    S.CANCELLED: frozenset(),
}


class IllegalTransition(Conflict):
    """A status change the table does not allow (a bug, or a race lost to another writer)."""

    code = "ILLEGAL_TRANSITION"

    def __init__(self, current: ExecutionStatus, wanted: ExecutionStatus) -> None:
        super().__init__(
            f"an execution that is {current.value} cannot become {wanted.value}",
            details={"from": current.value, "to": wanted.value},
        )
        self.current, self.wanted = current, wanted


def check_transition(current: ExecutionStatus | str, wanted: ExecutionStatus | str) -> None:
    """Raise `IllegalTransition` unless `current -> wanted` is in the table."""
    current, wanted = ExecutionStatus(current), ExecutionStatus(wanted)
    if wanted not in TRANSITIONS[current]:
        raise IllegalTransition(current, wanted)


def allowed(current: ExecutionStatus | str, wanted: ExecutionStatus | str) -> bool:
    return ExecutionStatus(wanted) in TRANSITIONS[ExecutionStatus(current)]
