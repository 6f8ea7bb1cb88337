"""Resuming a run from its recorded steps (after an approval, a consent, or a process that died).

Recorded model replies are replayed, never asked again; recorded tool results are replayed,
never run again. A tool call the model asked for and that has no recorded result is resolved
before the model continues:

- a call a person decided on: run it (approved; edited: with the edited arguments) or tell the
  model it was rejected;
- a call that started (its `tool_call` is recorded) but has no result: re-run only when its
  effect is `read`; otherwise the model is told it was interrupted (it may or may not have
  taken effect), so a write, send or destructive call never happens twice;
- a call that never started: run it now (a tool that needs approval pauses the run for it);
- after a decision, the other calls of the same reply that never ran are skipped, as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from pasar_core.executions.approval import AWAITING_APPROVAL, PendingCall
from pasar_core.executions.decisions import Decided, decisions_of, pending_of
from pasar_core.executions.events import Event

INTERRUPTED = (
    "INTERRUPTED: the run stopped while this call was running, so it may or may not have "
    "taken effect; it was not repeated. Check its effect before calling it again"
)
NOT_RUN = "NOT_RUN: the run paused before this call"
REJECTED = "REJECTED: a person rejected this call; do not retry it"


def tool_message_content(step: Mapping[str, Any]) -> str:
    """What the model saw for a recorded tool result (the wrapper's JSON)."""
    if "error" in step:
        code, _, message = str(step["error"]).partition(": ")
        return json.dumps({"error": {"code": code, "message": message}})
    return json.dumps(step.get("result"), default=str)


@dataclass(frozen=True, slots=True)
class OpenCall:
    """A tool call of the last model reply with no recorded result."""

    id: str
    name: str
    args: dict[str, Any]
    started: bool  # its tool_call step was recorded: it may have run


@dataclass(slots=True)
class Replay:
    """A run's conversation after the user's input, rebuilt from its recorded events."""

    messages: list[BaseMessage] = field(default_factory=list)
    pending: list[PendingCall] = field(default_factory=list)
    decisions: dict[str, Decided] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)

    def open_calls(self) -> list[OpenCall]:
        answered = {m.tool_call_id for m in self.messages if isinstance(m, ToolMessage)}
        last = next((m for m in reversed(self.messages) if isinstance(m, AIMessage)), None)
        if last is None:
            return []
        return [
            OpenCall(str(call["id"]), call["name"], dict(call["args"]), call["id"] in self.started)
            for call in last.tool_calls
            if call.get("id") and call["id"] not in answered
        ]


def replay(events: list[Event]) -> Replay:
    state = Replay()
    for event in events:
        data = event.data
        if event.type == "model_call" and "error" not in data:
            calls = [
                {"name": c["name"], "args": c["args"], "id": c["id"]}
                for c in data.get("tool_calls", [])
                if c.get("id")
            ]
            state.messages.append(AIMessage(content=data.get("content", ""), tool_calls=calls))
        elif event.type == "tool_call" and data.get("tool_call_id"):
            state.started.add(str(data["tool_call_id"]))
        elif event.type == "tool_result" and data.get("tool_call_id"):
            state.messages.append(
                ToolMessage(tool_message_content(data), tool_call_id=data["tool_call_id"])
            )
        elif event.type == "status" and data.get("status") == AWAITING_APPROVAL:
            state.pending = [
                PendingCall(call["tool"], dict(call["args"]), str(call["tool_call_id"]))
                for call in pending_of(data)
            ]
            state.decisions = {}
        elif event.type == "approval":
            state.decisions = decisions_of(data)
    return state
