"""Human approval of risky tool calls.

Tools whose effect is in the agent's `approval.require_for` (default: send and destructive) do
not run when the model calls them: the run pauses as `awaiting_approval` with the pending call
in its events: every call of the model's reply that needs approval, each with the hash of its
arguments (`decisions.call_hash`), until `approval_ttl_s` has passed. `POST
/executions/{id}/approval` (or `decideApproval`) approves, rejects or edits each of them at once
(`executions.approval_decisions`); the run then resumes from its recorded steps
(`executions.resume`): approved calls run (edited ones with the new arguments), rejections are
returned to the model, and the model continues. Limits count from the resume.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from langchain.agents.middleware import AgentMiddleware
from langchain.agents.middleware.types import ToolCallRequest
from langchain_core.messages import ToolMessage
from langgraph.types import Command

from pasar_core.agents.builder import RUN_HOOKS
from pasar_core.executions.decisions import AWAITING_APPROVAL as AWAITING_APPROVAL
from pasar_core.executions.decisions import ApprovalDecision as ApprovalDecision
from pasar_core.executions.decisions import call_hash
from pasar_core.registry import Registry

CURRENT_TOOL_CALL: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pasar_tool_call_id", default=None
)


@dataclass(frozen=True, slots=True)
class PendingCall:
    tool: str
    args: dict[str, Any]
    tool_call_id: str

    def as_json(self, execution_id: uuid.UUID) -> dict[str, Any]:
        digest = call_hash(execution_id, self.tool_call_id, self.tool, self.args)
        return {"tool": self.tool, "args": self.args, "tool_call_id": self.tool_call_id,
                "args_hash": digest}  # fmt: skip


class ApprovalRequired(Exception):
    """Raised out of the agent loop to pause the run for a human decision."""

    def __init__(self, call: PendingCall) -> None:
        super().__init__(f"{call.tool} needs approval")
        self.call = call


class ApprovalGate(AgentMiddleware[Any, Any, Any]):
    """Stops calls of tools whose effect needs approval; refuses (and has recorded) calls of
    tools the agent did not declare; tags every call with its id."""

    def __init__(self, names_to_ids: Mapping[str, str], gated: frozenset[str]) -> None:
        super().__init__()
        self._ids = dict(names_to_ids)
        self._gated = gated

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        call = request.tool_call
        tool_id = self._ids.get(call["name"])
        hooks = RUN_HOOKS.get(None)
        if request.tool is None and hooks is not None and hooks.tool_refused is not None:
            content = await hooks.tool_refused(call["name"], dict(call["args"]), call.get("id"))
            return ToolMessage(content, name=call["name"], tool_call_id=call["id"], status="error")
        if tool_id in self._gated:
            raise ApprovalRequired(PendingCall(tool_id, dict(call["args"]), str(call["id"])))
        token = CURRENT_TOOL_CALL.set(call.get("id"))
        try:
            return await handler(request)
        finally:
            CURRENT_TOOL_CALL.reset(token)


def gated_tools(
    registry: Registry, tool_ids: list[str], require_for: Collection[str]
) -> frozenset[str]:
    return frozenset(
        tool_id for tool_id in tool_ids if registry.tool(tool_id).spec.effect.value in require_for
    )
