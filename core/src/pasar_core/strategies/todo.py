"""`todo`: the ReAct loop with LangChain's todo-list middleware. The model keeps a list of
tasks with `write_todos`; each list it writes is recorded as a `plan` step."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, TodoListMiddleware
from langchain.agents.middleware.types import ToolCallRequest
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.types import Command

from pasar_core.specs import StrategyParts
from pasar_core.strategies.builtin import WRITE_TODOS
from pasar_core.strategies.plans import record_internal_call, record_plan


def _tool_message(result: ToolMessage | Command[Any]) -> ToolMessage | None:
    if isinstance(result, ToolMessage):
        return result
    update = result.update if isinstance(result.update, dict) else {}
    for message in update.get("messages", ()):
        if isinstance(message, ToolMessage):
            return message
    return None


class TodoSteps(AgentMiddleware[Any, Any, Any]):
    """Records each `write_todos` call (its list as a `plan` step, the call and its answer as
    internal tool steps); other tools pass untouched."""

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        call = request.tool_call
        if call["name"] != WRITE_TODOS or request.tool is None:
            return await handler(request)
        result = await handler(request)
        message = _tool_message(result)
        answer = message.content if message is not None else None
        await record_internal_call(WRITE_TODOS, call["args"], call.get("id"), answer)
        todos = call["args"].get("todos")
        await record_plan("todo", {"todos": todos if isinstance(todos, list) else []})
        return result


class RecordedTodoList(TodoListMiddleware):
    """The todo-list middleware, recording the calls it refuses itself (several `write_todos`
    in one reply) so a resumed run replays their answers too."""

    async def aafter_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        update = await super().aafter_model(state, runtime)
        refused = [m for m in (update or {}).get("messages", ()) if isinstance(m, ToolMessage)]
        if refused:
            reply = next(m for m in reversed(state["messages"]) if isinstance(m, AIMessage))
            args = {call["id"]: call["args"] for call in reply.tool_calls}
            for message in refused:
                call_id = message.tool_call_id
                error = f"PARALLEL_WRITE_TODOS: {message.text}"
                await record_internal_call(WRITE_TODOS, args.get(call_id, {}), call_id, None, error)
        return update


def build_todo(parts: StrategyParts) -> Any:
    # The todo middleware sits innermost: the approval gate and recording see its tool first.
    middleware = [*parts.middleware, TodoSteps(), RecordedTodoList()]
    return create_agent(
        parts.model, list(parts.tools), system_prompt=parts.system_prompt, middleware=middleware
    )
