"""What a caller sends to approve or reject a paused tool call, and the status of a paused run,
apart from the approval gate itself (pasar_core.executions.approval), which needs LangChain."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AWAITING_APPROVAL = "awaiting_approval"


class ApprovalDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    note: str | None = Field(default=None, max_length=2000)
