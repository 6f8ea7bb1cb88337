"""What a caller sends to decide on the tool calls a paused run waits on, and the status of a
paused run, apart from the approval gate itself (pasar_core.executions.approval), which needs
LangChain.

A pause lists every call of the model's reply that needs approval, each with an `args_hash`
(`call_hash`: the execution, the call id, the tool and its arguments). A decision names the call
and the hash it was shown; one request decides every pending call of the pause at once
(`approve`, `reject`, or `edit` with new arguments). The older single form (`{"decision":
"approve"}`) decides the one pending call of a pause that has exactly one.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

AWAITING_APPROVAL = "awaiting_approval"
MAX_DECISIONS = 100


def call_hash(execution_id: uuid.UUID, tool_call_id: str, tool: str, args: Any) -> str:
    """What a decision is bound to: these arguments of this call of this run."""
    material = {"execution": str(execution_id), "call": tool_call_id, "tool": tool, "args": args}
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class CallDecision(BaseModel):
    """One pending call's decision: `edit` runs the call with `args` instead."""

    model_config = ConfigDict(extra="forbid")

    tool_call_id: str = Field(min_length=1, max_length=200)
    decision: Literal["approve", "reject", "edit"]
    args_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    args: dict[str, Any] | None = None
    note: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _args_only_for_edit(self) -> CallDecision:
        if self.decision == "edit" and self.args is None:
            raise ValueError("an edit needs the new args")
        if self.decision != "edit" and self.args is not None:
            raise ValueError("args are only sent with an edit")
        return self


class ApprovalDecision(BaseModel):
    """`decisions` (one per pending call), or the single form `decision` for a lone call."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"] | None = None
    note: str | None = Field(default=None, max_length=2000)
    decisions: list[CallDecision] | None = Field(default=None, max_length=MAX_DECISIONS)

    @model_validator(mode="after")
    def _one_form(self) -> ApprovalDecision:
        if (self.decision is None) == (self.decisions is None):
            raise ValueError("send either decision or decisions")
        if self.decisions is not None:
            if not self.decisions:
                raise ValueError("decisions is empty")
            ids = [item.tool_call_id for item in self.decisions]
            if len(set(ids)) != len(ids):
                raise ValueError("one decision per tool_call_id")
        return self


@dataclass(frozen=True, slots=True)
class Decided:
    """A person's decision on one call: `approve`, `reject` or `edit` (with `args`)."""

    decision: str
    args: dict[str, Any] | None = None


def decisions_of(data: Mapping[str, Any]) -> dict[str, Decided]:
    """The decisions of an `approval` event by call id (the older single form included)."""
    if "decisions" in data:
        return {
            str(item["tool_call_id"]): Decided(str(item["decision"]), item.get("args"))
            for item in data["decisions"]
        }
    pending = data.get("pending") or {}
    return {str(pending["tool_call_id"]): Decided(str(data["decision"]))} if pending else {}


def pending_of(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pending calls of an awaiting_approval status event (a list; once a single call)."""
    pending = data.get("pending")
    if isinstance(pending, dict):
        return [pending]
    return list(pending or [])
