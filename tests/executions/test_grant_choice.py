"""Whose OAuth grant a run uses: the owner's runs their own; a member's, only what was attached."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pasar_core.executions.status import ExecutionStatus
from pasar_core.executions.store import RunRecord

OWNER, MEMBER, OTHER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def record(runner: uuid.UUID, attached: dict[str, uuid.UUID]) -> RunRecord:
    return RunRecord(
        id=uuid.uuid4(), agent_id=uuid.uuid4(), user_id=runner, status=ExecutionStatus.RUNNING,
        input="x", thread_id=None, input_hash=None, executor="inline", attempts=1,
        interruptions=0, cancel_requested=False, lease=None, heartbeat_at=None,
        created_at=datetime.now(UTC), started_at=None, last_seq=1, agent_config={},
        agent_tool_ids=[], agent_owner_id=OWNER, connections=attached,
    )  # fmt: skip


def test_the_owners_runs_use_the_owners_grant_even_with_a_members_attached() -> None:
    assert record(OWNER, {"google": MEMBER}).grant_user("google") == OWNER
    assert record(OWNER, {}).grant_user("google") == OWNER


def test_a_members_run_uses_only_the_attached_grant() -> None:
    assert record(OTHER, {"google": MEMBER}).grant_user("google") == MEMBER
    assert record(OTHER, {"google": MEMBER}).grant_user("slack") is None
    assert record(OTHER, {}).grant_user("google") is None
