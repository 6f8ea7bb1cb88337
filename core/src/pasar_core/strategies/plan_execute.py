"""`plan_execute`: the model writes a plan first, then carries out its steps one at a time
(each a ReAct loop over the agent's tools); a step in which a tool failed makes it re-plan
the remaining work, at most `MAX_REPLANS` times.

A small LangGraph `StateGraph`: plan -> execute -> review -> (execute | replan | end). The
planner and each step are `create_agent` graphs over the run's middleware, so every model and
tool call is limited, recorded and approved as under `react`; the planner's replies are model
calls in the conversation like any other. Each plan (and each step done) is a `plan` step;
a resumed run continues from the latest one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, NotRequired

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain.agents.middleware.types import AgentState, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from pasar_core.specs import StrategyParts
from pasar_core.strategies.plans import failed_calls, record_plan, recorded_plan

STRATEGY = "plan_execute"
MAX_REPLANS = 3
MAX_PLAN_STEPS = 12
MAX_STEP_CHARS = 500

PLANNER_NOTE = (
    "Before doing anything, write a short plan for the user's request: reply with the steps "
    "only, one per line, numbered (1., 2., ...), at most {limit}. Do not call tools now."
)
REPLANNER_NOTE = (
    "Step {number} of the plan failed: {failure}\nThe plan was:\n{plan}\nWrite a new plan "
    "for the work that remains: reply with the steps only, one per line, numbered, at most "
    "{limit}. Do not call tools now."
)
STEP_NOTE = (
    "You are following this plan:\n{plan}\nCarry out step {number} now: {step}\nUse the tools "
    "you need; when the step is done, reply with its outcome without calling tools."
)
LAST_STEP_NOTE = " This is the last step: end with the final answer for the user."


class PlanState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    plan: NotRequired[list[str]]
    plan_step: NotRequired[int]
    plan_revision: NotRequired[int]
    plan_failure: NotRequired[str | None]
    plan_note: NotRequired[str]


class _NoteState(AgentState[Any]):
    plan_note: NotRequired[str]


class PlanNote(AgentMiddleware[Any, Any, Any]):
    """Adds the current phase's instructions (`plan_note`) to the system message."""

    state_schema = _NoteState

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> Any:
        note = str(request.state.get("plan_note") or "")
        if not note:
            return await handler(request)
        base = str(request.system_message.text) if request.system_message is not None else ""
        system = SystemMessage(f"{base}\n\n{note}" if base else note)
        return await handler(request.override(system_message=system))


_NUMBERED = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")


def parse_plan(text: str) -> list[str]:
    """The steps of a plan reply: a JSON list (or `{"steps": [...]}`), else one per line with
    its number or bullet dropped."""
    items: list[Any]
    try:
        loaded = json.loads(text)
    except ValueError:
        loaded = None
    if isinstance(loaded, dict):
        loaded = loaded.get("steps")
    if isinstance(loaded, list):
        items = loaded
    else:
        items = [_NUMBERED.sub("", line) for line in text.splitlines()]
    steps = [str(item).strip()[:MAX_STEP_CHARS] for item in items if str(item).strip()]
    return steps[:MAX_PLAN_STEPS]


def _numbered(steps: Sequence[str]) -> str:
    return "\n".join(f"{number}. {step}" for number, step in enumerate(steps, 1))


def _request(messages: Sequence[AnyMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message.text[:MAX_STEP_CHARS]
    return "Answer the user."


def step_failure(messages: Sequence[AnyMessage]) -> str | None:
    """The first failed tool call of the step that just ended (its messages follow the
    previous reply without tool calls), or None. In a run the recorded results say which
    failed; outside one, an error-shaped answer does."""
    body: list[AnyMessage] = []
    for message in reversed(messages[:-1]):
        if isinstance(message, HumanMessage):
            break
        if isinstance(message, AIMessage) and not message.tool_calls:
            break
        body.append(message)
    failed = failed_calls()
    for message in reversed(body):
        if not isinstance(message, ToolMessage):
            continue
        if failed is not None:
            if message.tool_call_id in failed:
                return failed[message.tool_call_id][:MAX_STEP_CHARS]
            continue
        try:
            content = json.loads(message.text)
        except ValueError:
            content = None
        if isinstance(content, dict) and isinstance(content.get("error"), dict):
            error = content["error"]
            return f"{error.get('code', 'ERROR')}: {error.get('message', '')}"[:MAX_STEP_CHARS]
        if message.status == "error":
            return message.text[:MAX_STEP_CHARS]
    return None


def _last_reply(messages: Sequence[AnyMessage]) -> AIMessage | None:
    return next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)


def _progress(steps: Sequence[str], done: int, failed: int | None = None) -> list[dict[str, str]]:
    def status(index: int) -> str:
        if index == failed:
            return "failed"
        return "done" if index < done else "pending"

    return [{"title": step, "status": status(i)} for i, step in enumerate(steps)]


def build_plan_execute(parts: StrategyParts) -> Any:
    middleware = [*parts.middleware, PlanNote()]
    planner = create_agent(
        parts.model, [], system_prompt=parts.system_prompt, middleware=middleware
    )
    executor = create_agent(
        parts.model, list(parts.tools), system_prompt=parts.system_prompt, middleware=middleware
    )

    async def ask_planner(state: PlanState, note: str) -> tuple[list[str], list[AnyMessage]]:
        before = len(state["messages"])
        planner_input: Any = {"messages": state["messages"], "plan_note": note}
        result = await planner.ainvoke(planner_input)
        added = list(result["messages"][before:])
        reply = _last_reply(added)
        steps = parse_plan(reply.text) if reply is not None else []
        return steps or [_request(state["messages"])], added

    async def plan(state: PlanState) -> dict[str, Any]:
        recorded = recorded_plan(STRATEGY)
        if recorded is not None:  # a resumed run: go on where it stopped
            steps = [str(step["title"]) for step in recorded.get("steps", [])]
            return {"plan": steps, "plan_step": int(recorded.get("current", 0)),
                    "plan_revision": int(recorded.get("revision", 0)), "plan_failure": None}  # fmt: skip
        steps, added = await ask_planner(state, PLANNER_NOTE.format(limit=MAX_PLAN_STEPS))
        await record_plan(STRATEGY, {"revision": 0, "current": 0, "steps": _progress(steps, 0)})
        return {"messages": added, "plan": steps, "plan_step": 0, "plan_revision": 0,
                "plan_failure": None}  # fmt: skip

    def focus(state: PlanState) -> dict[str, Any]:
        steps, index = state["plan"], state["plan_step"]
        note = STEP_NOTE.format(plan=_numbered(steps), number=index + 1, step=steps[index])
        return {"plan_note": note + (LAST_STEP_NOTE if index == len(steps) - 1 else "")}

    async def review(state: PlanState) -> dict[str, Any]:
        steps, index = state["plan"], state["plan_step"]
        revision = state.get("plan_revision", 0)
        failure = step_failure(state["messages"])
        if failure is not None and revision < MAX_REPLANS:
            return {"plan_failure": failure}
        done = index + 1
        finished = done >= len(steps)
        await record_plan(STRATEGY, {"revision": revision, "current": done,
                                     "steps": _progress(steps, done), "finished": finished})  # fmt: skip
        return {"plan_step": done, "plan_failure": None}

    async def replan(state: PlanState) -> dict[str, Any]:
        steps, index = state["plan"], state["plan_step"]
        revision = state.get("plan_revision", 0) + 1
        failure = state.get("plan_failure") or "a tool failed"
        note = REPLANNER_NOTE.format(number=index + 1, failure=failure, plan=_numbered(steps),
                                     limit=MAX_PLAN_STEPS)  # fmt: skip
        new_steps, added = await ask_planner(state, note)
        await record_plan(STRATEGY, {
            "revision": revision, "current": 0, "steps": _progress(new_steps, 0),
            "replaced": _progress(steps, index, failed=index), "reason": failure,
        })  # fmt: skip
        return {"messages": added, "plan": new_steps, "plan_step": 0, "plan_revision": revision,
                "plan_failure": None}  # fmt: skip

    def after_review(state: PlanState) -> str:
        if state.get("plan_failure"):
            return "replan"
        return END if state["plan_step"] >= len(state["plan"]) else "focus"

    graph = StateGraph(PlanState)
    graph.add_node("plan", plan)
    graph.add_node("focus", focus)
    graph.add_node("execute", executor)
    graph.add_node("review", review)
    graph.add_node("replan", replan)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "focus")
    graph.add_edge("focus", "execute")
    graph.add_edge("execute", "review")
    graph.add_conditional_edges("review", after_review, ["focus", "replan", END])
    graph.add_edge("replan", "focus")
    return graph.compile(name=STRATEGY)
