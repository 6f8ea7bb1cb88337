"""Reasoning strategies: each drives a scripted multi-step task and records its plan in the
steps; approval and resume hold under them; a plugin adds one; unknown names are refused."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Iterator
from typing import Any

import pytest
from langchain.agents import create_agent
from pasar_core import StrategyParts, StrategySpec, ToolFamily, ToolSpec, hookimpl
from pasar_core.agents.builder import build_agent
from pasar_core.agents.config import AgentConfig
from pasar_core.errors import DuplicateRegistration, InvalidRegistration, ValidationFailed
from pasar_core.executions.approval import ApprovalRequired
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import build_registry
from pasar_core.settings import Settings
from pasar_core.strategies.plan_execute import parse_plan
from pasar_core.strategies.plans import record_plan
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.executions.test_events import sse_events


def calls(*pairs: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "args": args} for name, args in pairs]}


def read(path: str) -> dict[str, Any]:
    return calls(("txt_read", {"path": path}))


def write(path: str, content: str) -> dict[str, Any]:
    return calls(("txt_write", {"path": path, "content": content}))


def make_agent(
    client: TestClient,
    headers: dict[str, str],
    strategy: str,
    *script: dict[str, Any],
    require_for: list[str] | None = None,
) -> str:
    config: dict[str, Any] = {"model": "scripted", "model_options": {"script": list(script)},
                              "strategy": strategy}  # fmt: skip
    if require_for is not None:
        config["approval"] = {"require_for": require_for}
    body = {"name": f"{strategy} agent", "tools": ["txt:read", "txt:write"], "config": config}
    response = client.post("/agents", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["agent_id"])


def execute(client: TestClient, headers: dict[str, str], agent_id: str) -> dict[str, Any]:
    response = client.post(f"/agents/{agent_id}/execute", json={"input": "notes"}, headers=headers)
    assert response.status_code in (200, 202), response.text  # 202: paused
    return dict(response.json())


def kinds(steps: list[dict[str, Any]]) -> list[str]:
    return [step["type"] for step in steps]


def plans(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [step for step in steps if step["type"] == "plan"]


def titles(plan: dict[str, Any]) -> list[str]:
    return [step["title"] for step in plan["steps"]]


def test_react_records_no_plan_and_runs_as_before(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = make_agent(client, headers, "react", write("r.txt", "hi"), {"content": "done"})
    done = execute(client, headers, agent_id)
    assert done["status"] == "succeeded", done
    assert kinds(done["steps"]) == ["model_call", "tool_call", "tool_result", "model_call"]
    assert done["output"] == {"message": "done"}


def test_plan_execute_plans_replans_after_a_failing_tool_and_answers(
    client: TestClient, make_user
) -> None:
    headers = make_user()
    agent_id = make_agent(
        client, headers, "plan_execute",
        {"content": "1. Read notes.txt\n2. Answer with its content"},
        read("notes.txt"),  # there is no such file: the step fails
        {"content": "notes.txt is missing"},
        {"content": "1. Write notes.txt\n2. Read notes.txt back and answer"},
        write("notes.txt", "remember milk"),
        {"content": "written"},
        read("notes.txt"),
        {"content": "Your notes say: remember milk"},
    )  # fmt: skip
    done = execute(client, headers, agent_id)
    assert done["status"] == "succeeded", done
    steps = done["steps"]
    assert kinds(steps) == [
        "model_call", "plan",  # the plan
        "model_call", "tool_call", "tool_result", "model_call",  # step 1 fails
        "model_call", "plan",  # the new plan
        "model_call", "tool_call", "tool_result", "model_call", "plan",  # step 1 done
        "model_call", "tool_call", "tool_result", "model_call", "plan",  # step 2: the answer
    ]  # fmt: skip
    assert "error" in steps[4]
    first, replanned, progress, finished = plans(steps)
    assert first["strategy"] == "plan_execute"
    assert first["revision"] == 0
    assert titles(first) == ["Read notes.txt", "Answer with its content"]
    assert replanned["revision"] == 1
    assert replanned["reason"].startswith(steps[4]["error"].split(":")[0])
    assert [s["status"] for s in replanned["replaced"]] == ["failed", "pending"]
    assert titles(replanned) == ["Write notes.txt", "Read notes.txt back and answer"]
    assert [s["status"] for s in progress["steps"]] == ["done", "pending"]
    assert finished["finished"] is True
    assert [s["status"] for s in finished["steps"]] == ["done", "done"]
    assert steps[15]["result"]["content"] == "remember milk"
    assert done["output"] == {"message": "Your notes say: remember milk"}


@pytest.mark.parametrize(
    ("limits", "made", "error"),
    [({"max_steps": 3}, 3, "Model call limits exceeded"),
     ({"max_tool_calls": 1}, 4, "Tool call limit reached")],
)  # fmt: skip
def test_plan_execute_holds_the_runs_limits_across_its_planner_and_steps(
    client: TestClient, make_user, limits: dict[str, int], made: int, error: str
) -> None:
    """Each step is a graph of its own: the limits count the whole run's calls, not each
    graph's (LangChain's limit middleware restarts its count in every graph)."""
    headers = make_user()
    script = [{"content": "1. Read a.txt\n2. Read b.txt\n3. Answer"}, write("a.txt", "a"),
              {"content": "a done"}, write("b.txt", "b"), {"content": "b done"},
              {"content": "all done"}]  # fmt: skip
    config = {"model": "scripted", "model_options": {"script": script},
              "strategy": "plan_execute", "limits": limits}  # fmt: skip
    body = {"name": "bounded", "tools": ["txt:read", "txt:write"], "config": config}
    created = client.post("/agents", json=body, headers=headers)
    assert created.status_code == 201, created.text
    done = execute(client, headers, created.json()["agent_id"])
    assert done["status"] == "limit_exceeded", done
    assert error.lower() in str(done["error"]).lower(), done["error"]
    assert kinds(done["steps"]).count("model_call") == made
    assert kinds(done["steps"]).count("tool_call") <= limits.get("max_tool_calls", 99)


def test_plan_execute_pauses_for_approval_and_resumes_its_plan(
    client: TestClient, make_user
) -> None:
    headers = make_user()
    agent_id = make_agent(
        client, headers, "plan_execute",
        {"content": "1. Write the file\n2. Confirm"},
        write("approved.txt", "yes"),
        {"content": "written"},
        {"content": "The file is written."},
        require_for=["write"],
    )  # fmt: skip
    paused = execute(client, headers, agent_id)
    assert paused["status"] == "awaiting_approval", paused
    assert paused["pending_approval"]["tool"] == "txt:write"
    assert kinds(paused["steps"]) == ["model_call", "plan", "model_call"]  # nothing ran yet
    decided = client.post(f"/executions/{paused['execution_id']}/approval",
                          json={"decision": "approve"}, headers=headers)  # fmt: skip
    assert decided.status_code == 200, decided.text
    done = decided.json()
    assert done["status"] == "succeeded", done
    assert kinds(done["steps"]) == [
        "model_call", "plan", "model_call",
        "tool_call", "tool_result", "model_call", "plan",  # the approved write, step 1 done
        "model_call", "plan",  # step 2
    ]  # fmt: skip
    assert done["steps"][4]["result"]["bytes_written"] == 3
    first, *_, finished = plans(done["steps"])
    assert titles(first) == titles(finished) == ["Write the file", "Confirm"]  # not re-planned
    assert finished["finished"] is True
    assert done["output"] == {"message": "The file is written."}


def test_plan_execute_rejection_is_a_failed_step_that_replans(
    client: TestClient, make_user
) -> None:
    headers = make_user()
    agent_id = make_agent(
        client, headers, "plan_execute",
        {"content": "1. Write the file"},
        write("rejected.txt", "no"),
        {"content": "not allowed"},
        {"content": "1. Tell the user it was not written"},
        {"content": "Nothing was written."},
        require_for=["write"],
    )  # fmt: skip
    paused = execute(client, headers, agent_id)
    assert paused["status"] == "awaiting_approval", paused
    done = client.post(f"/executions/{paused['execution_id']}/approval",
                       json={"decision": "reject"}, headers=headers).json()  # fmt: skip
    assert done["status"] == "succeeded", done
    assert done["steps"][3]["error"].startswith("REJECTED")
    replanned = plans(done["steps"])[1]
    assert replanned["revision"] == 1
    assert replanned["reason"].startswith("REJECTED")
    assert done["output"] == {"message": "Nothing was written."}


TODOS = [{"content": "Write notes.txt", "status": "in_progress"},
         {"content": "Answer", "status": "pending"}]  # fmt: skip
TODOS_DONE = [{"content": "Write notes.txt", "status": "completed"},
              {"content": "Answer", "status": "completed"}]  # fmt: skip


def test_todo_records_each_list_and_the_calls_of_write_todos(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = make_agent(
        client, headers, "todo",
        calls(("write_todos", {"todos": TODOS})),
        write("notes.txt", "eggs"),
        calls(("write_todos", {"todos": TODOS_DONE})),
        {"content": "Noted: eggs"},
    )  # fmt: skip
    done = execute(client, headers, agent_id)
    assert done["status"] == "succeeded", done
    steps = done["steps"]
    assert kinds(steps) == [
        "model_call", "tool_call", "tool_result", "plan",
        "model_call", "tool_call", "tool_result",
        "model_call", "tool_call", "tool_result", "plan",
        "model_call",
    ]  # fmt: skip
    assert steps[1] | {"at": None} == {"type": "tool_call", "at": None, "tool": None,
                                       "name": "write_todos", "internal": True,
                                       "args": {"todos": TODOS},
                                       "tool_call_id": steps[0]["tool_calls"][0]["id"]}  # fmt: skip
    assert "Updated todo list" in steps[2]["result"]
    assert [plan["todos"] for plan in plans(steps)] == [TODOS, TODOS_DONE]
    assert all(plan["strategy"] == "todo" for plan in plans(steps))
    assert steps[6]["result"]["bytes_written"] == 4
    assert not any(step.get("refused") for step in steps)


@pytest.mark.parametrize("order", ["todos first", "write first"])
def test_todo_write_todos_beside_a_call_that_needs_approval(
    client: TestClient, make_user, order: str
) -> None:
    """The trap: a resumed run must accept `write_todos` (not refuse it as undeclared), and
    it never lets the gated call through without the decision."""
    headers = make_user()
    pair: list[tuple[str, dict[str, Any]]] = [
        ("write_todos", {"todos": TODOS}),
        ("txt_write", {"path": "t.txt", "content": "ok"}),
    ]
    if order == "write first":
        pair.reverse()
    agent_id = make_agent(
        client, headers, "todo", calls(*pair), {"content": "all done"}, require_for=["write"]
    )
    paused = execute(client, headers, agent_id)
    assert paused["status"] == "awaiting_approval", paused
    assert [call["tool"] for call in paused["pending_approvals"]] == ["txt:write"]
    assert not any(s.get("tool") == "txt:write" for s in paused["steps"][1:])  # not run
    done = client.post(f"/executions/{paused['execution_id']}/approval",
                       json={"decision": "approve"}, headers=headers).json()  # fmt: skip
    assert done["status"] == "succeeded", done
    steps = done["steps"]
    assert not any(step.get("refused") for step in steps)
    todo_results = [s for s in steps if s["type"] == "tool_result" and s.get("internal")]
    assert len(todo_results) == 1
    written = [s for s in steps if s["type"] == "tool_result" and s.get("tool") == "txt:write"]
    assert written[0]["result"]["bytes_written"] == 2
    assert done["output"] == {"message": "all done"}


def test_thread_memory_carries_over_under_plan_execute(client: TestClient, make_user) -> None:
    headers = make_user()
    script = [{"content": "1. Answer"}, {"echo": True}]
    config = {"model": "scripted", "model_options": {"script": script},
              "strategy": "plan_execute", "memory": "thread"}  # fmt: skip
    agent_id = client.post("/agents", json={"name": "remembers", "config": config},
                           headers=headers).json()["agent_id"]  # fmt: skip
    body = {"input": "my name is Ada", "parameters": {"thread_id": "t1"}}
    first = client.post(f"/agents/{agent_id}/execute", json=body, headers=headers).json()
    assert first["status"] == "succeeded", first
    body = {"input": "what is my name?", "parameters": {"thread_id": "t1"}}
    second = client.post(f"/agents/{agent_id}/execute", json=body, headers=headers).json()
    assert second["status"] == "succeeded", second
    assert "my name is Ada" in second["output"]["message"]


def test_plan_steps_and_the_inner_agents_tokens_stream_over_sse(
    client: TestClient, make_user
) -> None:
    headers = make_user()
    agent_id = make_agent(
        client, headers, "plan_execute",
        {"content": "1. Greet"}, {"content": "Hello from step one"},
    )  # fmt: skip
    body = {"input": "hi", "parameters": {"wait": False}}
    run = client.post(f"/agents/{agent_id}/execute", json=body, headers=headers).json()
    events = sse_events(client, f"/executions/{run['execution_id']}/events", headers)
    stored = [event["event"] for event in events if "id" in event and event["event"] != "status"]
    assert stored == ["model_call", "plan", "model_call", "plan"]
    plan = next(event["data"] for event in events if event["event"] == "plan")
    assert plan["steps"] == [{"title": "Greet", "status": "pending"}]
    tokens = "".join(e["data"]["text"] for e in events if e["event"] == "token")
    assert tokens == "1. GreetHello from step one"


# -- the catalogue, and names nobody registered ----------------------------------------------


def test_the_strategies_are_listed_over_rest_and_graphql(client: TestClient) -> None:
    listed = client.get("/strategies")
    assert listed.status_code == 200, listed.text
    ids = [item["id"] for item in listed.json()["strategies"]]
    assert {"react", "plan_execute", "todo"} <= set(ids)
    assert ids == sorted(ids)
    assert all(item["title"] and item["description"] for item in listed.json()["strategies"])
    answer = client.post("/graphql", json={"query": "{ strategies { id title description } }"})
    assert answer.json()["data"]["strategies"] == listed.json()["strategies"]


def test_an_unknown_strategy_is_refused_over_rest_and_nothing_changes(
    client: TestClient, make_user
) -> None:
    headers = make_user()
    bad = {"name": "x", "config": {"model": "scripted", "strategy": "tree_of_thought"}}
    created = client.post("/agents", json=bad, headers=headers)
    assert created.status_code == 422, created.text
    error = created.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert "config.strategy" in error["message"]
    assert error["details"]["field"] == "config.strategy"
    assert {"react", "plan_execute", "todo"} <= set(error["details"]["installed"])
    assert client.get("/agents", headers=headers).json()["agents"] == []

    agent_id = make_agent(client, headers, "react", {"content": "hi"})
    before = client.get(f"/agents/{agent_id}", headers=headers).json()
    patch = {"config": {"model": "scripted", "strategy": "tree_of_thought"}}
    updated = client.put(f"/agents/{agent_id}", json=patch, headers=headers)
    assert updated.status_code == 422, updated.text
    assert updated.json()["error"]["details"]["field"] == "config.strategy"
    assert client.get(f"/agents/{agent_id}", headers=headers).json() == before
    malformed = client.post("/agents", headers=headers,
                            json={"name": "y", "config": {"strategy": "Not A Name!"}})  # fmt: skip
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"] == "VALIDATION_FAILED"


CREATE = """mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } } }"""
UPDATE = """mutation($id: ID!, $input: UpdateAgentInput!) {
  updateAgent(id: $id, input: $input) { agent { id config } } }"""


def test_an_unknown_strategy_is_refused_over_graphql_and_nothing_changes(
    client: TestClient, make_user
) -> None:
    headers = make_user()
    config = {"model": "scripted", "strategy": "nope"}
    answer = client.post("/graphql", headers=headers, json={
        "query": CREATE, "variables": {"input": {"name": "g", "config": config}}}).json()  # fmt: skip
    assert answer["data"] is None
    assert answer["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"
    assert "config.strategy" in answer["errors"][0]["message"]
    assert client.get("/agents", headers=headers).json()["agents"] == []
    agent_id = make_agent(client, headers, "todo", {"content": "hi"})
    answer = client.post("/graphql", headers=headers, json={
        "query": UPDATE, "variables": {"id": agent_id, "input": {"config": config}}}).json()  # fmt: skip
    assert answer["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"
    assert client.get(f"/agents/{agent_id}", headers=headers).json()["config"]["strategy"] == "todo"


# -- a third-party strategy -------------------------------------------------------------------


def build_checklist(parts: StrategyParts) -> Any:
    """A plugin's strategy: records a fixed checklist, then runs the ReAct loop."""
    from langgraph.graph import START, MessagesState, StateGraph
    from pasar_core.strategies.plans import recorded_plan

    agent = create_agent(parts.model, list(parts.tools), system_prompt=parts.system_prompt,
                         middleware=list(parts.middleware))  # fmt: skip

    async def checklist(state: MessagesState) -> dict[str, Any]:
        if recorded_plan("checklist") is None:
            await record_plan("checklist", {"items": ["look", "answer"]})
        return {}

    graph = StateGraph(MessagesState)
    graph.add_node("checklist", checklist)
    graph.add_node("agent", agent)
    graph.add_edge(START, "checklist")
    graph.add_edge("checklist", "agent")
    return graph.compile()


def checklist_plugin() -> types.SimpleNamespace:
    @hookimpl
    def register_strategies() -> list[StrategySpec]:
        return [StrategySpec("checklist", "Checklist", "A fixed checklist first.", build_checklist)]

    return types.SimpleNamespace(register_strategies=register_strategies)


@pytest.fixture
def plugin_client(pasar_settings: Settings) -> Iterator[TestClient]:
    pm = build_plugin_manager(extra=[checklist_plugin()])
    with TestClient(create_app(pasar_settings, pm), raise_server_exceptions=False) as client:
        yield client


def test_a_plugin_adds_a_strategy(plugin_client: TestClient) -> None:
    client = plugin_client
    listed = client.get("/strategies").json()["strategies"]
    assert {"id": "checklist", "title": "Checklist",
            "description": "A fixed checklist first."} in listed  # fmt: skip
    credentials = {"email": "plugin-strategy@example.com", "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    agent_id = make_agent(
        client, headers, "checklist", write("c.txt", "ok"), {"content": "checked"},
        require_for=["write"],
    )  # fmt: skip
    paused = execute(client, headers, agent_id)
    assert paused["status"] == "awaiting_approval", paused  # approval holds in its graph
    done = client.post(f"/executions/{paused['execution_id']}/approval",
                       json={"decision": "approve"}, headers=headers).json()  # fmt: skip
    assert done["status"] == "succeeded", done
    assert kinds(done["steps"]) == ["plan", "model_call", "tool_call", "tool_result", "model_call"]
    assert done["steps"][0]["items"] == ["look", "answer"]  # recorded once, not on resume


# -- the hook's rules, without a server -------------------------------------------------------


def strategies_plugin(*specs: object) -> types.SimpleNamespace:
    @hookimpl
    def register_strategies() -> list[object]:
        return list(specs)

    return types.SimpleNamespace(register_strategies=register_strategies)


CHECKLIST = StrategySpec("checklist", "Checklist", "A fixed checklist first.", build_checklist)


def test_the_built_in_strategies_come_from_their_plugin() -> None:
    registry = build_registry(build_plugin_manager(enabled=("strategies",)))
    assert sorted(registry.strategies) == ["plan_execute", "react", "todo"]
    assert registry.strategies["todo"].internal_tools == {"write_todos"}
    assert registry.strategies["react"].internal_tools == frozenset()


def test_a_strategy_registered_twice_or_badly_refuses_start_up() -> None:
    twice = build_plugin_manager(enabled=(), extra=[strategies_plugin(CHECKLIST, CHECKLIST)])
    with pytest.raises(DuplicateRegistration, match="checklist"):
        build_registry(twice)
    bad_id = StrategySpec("Check List", "Bad", "An id with a space.", build_checklist)
    with pytest.raises(InvalidRegistration, match="snake_case"):
        build_registry(build_plugin_manager(enabled=(), extra=[strategies_plugin(bad_id)]))
    with pytest.raises(InvalidRegistration, match="not StrategySpec"):
        build_registry(build_plugin_manager(enabled=(), extra=[strategies_plugin("react")]))


def test_a_strategy_tool_never_shadows_a_declared_tool() -> None:
    async def run(ctx: Any, args: dict[str, Any]) -> Any:
        return {}

    schema = {"type": "object"}
    todo_tool = ToolSpec(id="write:todos", title="Todos", description="A real tool.",
                         input_schema=schema, output_schema=schema, run=run)  # fmt: skip
    family = ToolFamily(id="write", title="Write", description="Writes.", tools=(todo_tool,))
    tools = types.SimpleNamespace(register_tool_families=hookimpl(lambda: [family]))
    pm = build_plugin_manager(enabled=("strategies", "llm_providers"), extra=[tools])
    registry = build_registry(pm)
    options = {"script": [{"content": "hi"}]}
    config = AgentConfig(model="scripted", model_options=options, strategy="todo")
    with pytest.raises(ValidationFailed, match="write_todos") as caught:
        build_agent(registry, config, ["write:todos"], {})
    assert caught.value.details["field"] == "config.strategy"
    build_agent(registry, config.model_copy(update={"strategy": "react"}), ["write:todos"], {})


def test_plans_are_parsed_from_numbered_lines_or_json() -> None:
    assert parse_plan("1. Look\n2) Answer\n\n- Done") == ["Look", "Answer", "Done"]
    assert parse_plan('{"steps": ["a", "b"]}') == ["a", "b"]
    assert parse_plan('["only"]') == ["only"]
    assert parse_plan("") == []
    assert len(parse_plan("\n".join(f"{i}. step" for i in range(40)))) == 12


# -- resuming: a strategy's own tool left open ------------------------------------------------


class RecordedSteps:
    """The part of a run's log that resolving a resumed run writes to: its steps."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []

    def step(self, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        step = {"type": type_, **data}
        self.steps.append(step)
        return step


def resolved(strategy: str, *tool_calls: dict[str, Any]) -> tuple[list[Any], list[dict[str, Any]]]:
    """What `_Run.resolve` makes of a last model reply whose calls have no results yet."""
    from langchain_core.messages import AIMessage
    from pasar_core.executions.resume import Replay
    from pasar_core.executions.runner import _Run

    pm = build_plugin_manager(enabled=("strategies", "files", "llm_providers"))
    config = AgentConfig(model="scripted", model_options={"script": [{"content": "x"}]},
                         strategy=strategy, approval={"require_for": ["write"]})  # fmt: skip
    ctx = types.SimpleNamespace(names={"txt_write": "txt:write"}, registry=build_registry(pm),
                                config=config, tool_ids=["txt:write"])  # fmt: skip
    log = RecordedSteps()
    from pasar_core.observability.metrics import Metrics

    host = types.SimpleNamespace(services=types.SimpleNamespace(metrics=Metrics()))
    run = _Run(host=host, ctx=ctx, run_log=log)  # type: ignore[arg-type]
    state = Replay(messages=[AIMessage("", tool_calls=list(tool_calls))])
    return asyncio.run(run.resolve(state)), log.steps


WRITE_TODOS = {"name": "write_todos", "args": {"todos": TODOS}, "id": "todo-1"}


def test_a_resumed_todo_run_accepts_an_open_write_todos_call() -> None:
    history, steps = resolved("todo", WRITE_TODOS)
    assert [m.tool_call_id for m in history[1:]] == ["todo-1"]
    assert "write_todos: accepted" in history[1].content
    assert [(s["type"], s["internal"], s["tool"]) for s in steps] == [
        ("tool_call", True, None), ("tool_result", True, None)]  # fmt: skip
    assert steps[0]["args"] == {"todos": TODOS}


def test_the_same_call_is_refused_where_the_strategy_adds_no_such_tool() -> None:
    history, steps = resolved("react", WRITE_TODOS)
    assert "TOOL_NOT_DECLARED" in history[1].content
    assert all(step.get("refused") for step in steps)


def test_accepting_write_todos_never_lets_a_gated_call_through() -> None:
    gated = {"name": "txt_write", "args": {"path": "x.txt", "content": "x"}, "id": "write-1"}
    with pytest.raises(ApprovalRequired) as paused:
        resolved("todo", WRITE_TODOS, gated)
    assert paused.value.call.tool == "txt:write"


def test_todo_records_the_answers_to_parallel_write_todos_calls(
    client: TestClient, make_user
) -> None:
    headers = make_user()
    twice = calls(("write_todos", {"todos": TODOS}), ("write_todos", {"todos": TODOS_DONE}))
    agent_id = make_agent(client, headers, "todo", twice, {"content": "one list at a time"})
    done = execute(client, headers, agent_id)
    assert done["status"] == "succeeded", done
    steps = done["steps"]
    assert kinds(steps) == ["model_call", "tool_call", "tool_result", "tool_call", "tool_result",
                            "model_call"]  # fmt: skip
    ids = [call["id"] for call in steps[0]["tool_calls"]]
    assert [steps[2]["tool_call_id"], steps[4]["tool_call_id"]] == ids
    assert all(steps[i]["error"].startswith("PARALLEL_WRITE_TODOS") for i in (2, 4))
    assert plans(steps) == []  # neither list was taken


def test_a_steps_failure_is_found_in_its_own_messages_only() -> None:
    from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
    from pasar_core.strategies.plan_execute import step_failure

    failed = '{"error": {"code": "TOOL_ERROR", "message": "no such file"}}'
    call = {"name": "txt_read", "args": {}, "id": "c1"}
    earlier: list[AnyMessage] = [HumanMessage("go"), AIMessage("", tool_calls=[call]),
               ToolMessage(failed, tool_call_id="c1"), AIMessage("step 1 failed")]  # fmt: skip
    assert step_failure(earlier) == "TOOL_ERROR: no such file"
    later: list[AnyMessage] = [*earlier, AIMessage("", tool_calls=[{**call, "id": "c2"}]),
             ToolMessage('{"content": "ok"}', tool_call_id="c2"), AIMessage("step 2 done")]  # fmt: skip
    assert step_failure(later) is None  # step 1's failure is not step 2's
