"""Agent runs through REST on the inline executor, driven by scripted models."""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient


def scripted(*replies: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "scripted", "model_options": {"script": list(replies), **extra}}


def create(
    client: TestClient, headers: dict[str, str], tools: list[str], config: dict[str, Any]
) -> str:
    response = client.post(
        "/agents", json={"name": "t", "tools": tools, "config": config}, headers=headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["agent_id"])


def execute(client: TestClient, headers: dict[str, str], agent_id: str, **body: Any) -> Any:
    body.setdefault("input", "go")
    return client.post(f"/agents/{agent_id}/execute", json=body, headers=headers)


def test_multi_step_tool_run_records_every_step(client: TestClient, make_user) -> None:
    headers = make_user()
    config = scripted(
        {
            "tool_calls": [
                {"name": "txt_write", "args": {"path": "notes/a.txt", "content": "hello"}}
            ]
        },
        {"tool_calls": [{"name": "txt_read", "args": {"path": "notes/a.txt"}}]},
        {"content": "The note says hello."},
    )
    agent_id = create(client, headers, ["txt:write", "txt:read"], config)
    response = execute(client, headers, agent_id, input="write and read a note")
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "succeeded"
    assert run["output"] == {"message": "The note says hello."}
    assert [step["type"] for step in run["steps"]] == [
        "model_call", "tool_call", "tool_result",
        "model_call", "tool_call", "tool_result",
        "model_call",
    ]  # fmt: skip
    assert run["steps"][1] == run["steps"][1] | {
        "tool": "txt:write",
        "args": {"path": "notes/a.txt", "content": "hello"},
    }
    assert run["steps"][5]["result"]["content"] == "hello"
    assert run["duration_ms"] >= 0
    fetched = client.get(f"/executions/{run['execution_id']}", headers=headers).json()
    assert fetched["steps"] == run["steps"]


def test_tool_errors_go_back_to_the_model(client: TestClient, make_user) -> None:
    headers = make_user()
    config = scripted(
        {"tool_calls": [{"name": "txt_read", "args": {"path": "../../etc/passwd"}}]},
        {"content": "I may not read that."},
    )
    agent_id = create(client, headers, ["txt:read"], config)
    run = execute(client, headers, agent_id).json()
    assert run["status"] == "succeeded"
    result = run["steps"][2]
    assert result["type"] == "tool_result"
    assert result["error"].startswith("TOOL_ERROR")
    assert "/etc/passwd" not in result["error"].replace("../../etc/passwd", "")


def test_invalid_tool_arguments_are_refused_by_the_core(client: TestClient, make_user) -> None:
    headers = make_user()
    config = scripted(
        {"tool_calls": [{"name": "txt_read", "args": {"path": 7}}]}, {"content": "ok"}
    )
    run = execute(client, headers, create(client, headers, ["txt:read"], config)).json()
    assert run["steps"][2]["error"].startswith("TOOL_INPUT_INVALID")


def test_step_limit_ends_as_limit_exceeded(client: TestClient, make_user) -> None:
    headers = make_user()
    looping = scripted(
        {"tool_calls": [{"name": "txt_write", "args": {"path": "x.txt", "content": "."}}]}
    )
    config = looping | {"limits": {"max_steps": 3}}
    run = execute(client, headers, create(client, headers, ["txt:write"], config)).json()
    assert run["status"] == "limit_exceeded"
    assert sum(step["type"] == "model_call" for step in run["steps"]) == 3


def test_tool_call_limit_ends_as_limit_exceeded(client: TestClient, make_user) -> None:
    headers = make_user()
    looping = scripted(
        {"tool_calls": [{"name": "txt_write", "args": {"path": "x.txt", "content": "."}}]}
    )
    config = looping | {"limits": {"max_tool_calls": 2}}
    run = execute(client, headers, create(client, headers, ["txt:write"], config)).json()
    assert run["status"] == "limit_exceeded"
    assert sum(step["type"] == "tool_call" for step in run["steps"]) == 2


def test_wall_clock_limit_ends_as_limit_exceeded(client: TestClient, make_user) -> None:
    headers = make_user()
    config = scripted({"content": "slow"}, delay_ms=5000) | {"limits": {"timeout_s": 0.3}}
    run = execute(client, headers, create(client, headers, [], config)).json()
    assert run["status"] == "limit_exceeded"
    assert "time limit" in run["error"]


def test_provider_outage_is_a_recorded_failed_step(client: TestClient, make_user) -> None:
    headers = make_user()
    config = scripted({"content": "never"}, fail=True)
    response = execute(client, headers, create(client, headers, [], config))
    assert response.status_code == 200
    run = response.json()
    assert run["status"] == "failed"
    assert run["steps"][-1]["type"] == "model_call"
    assert "outage" in run["steps"][-1]["error"]


def test_missing_provider_key_fails_with_what_to_set(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = create(client, headers, [], {"model": "openai:gpt-4o-mini"})
    run = execute(client, headers, agent_id).json()
    assert run["status"] == "failed"
    assert "OPENAI_API_KEY" in run["error"]


def test_unknown_provider_and_bad_script_are_refused_when_saving(
    client: TestClient, make_user
) -> None:
    headers = make_user()
    unknown = client.post(
        "/agents", json={"name": "x", "config": {"model": "nope:model"}}, headers=headers
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "UNKNOWN_PROVIDER"
    bad_script = client.post(
        "/agents",
        json={"name": "x", "config": {"model": "scripted", "model_options": {"script": []}}},
        headers=headers,
    )
    assert bad_script.status_code == 422
    assert bad_script.json()["error"]["details"]["errors"][0]["path"].startswith(
        "/config/model_options"
    )


def test_fire_and_forget_then_poll(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = create(client, headers, [], scripted({"content": "later"}, delay_ms=200))
    response = execute(client, headers, agent_id, parameters={"wait": False})
    assert response.status_code == 202
    execution_id = response.json()["execution_id"]
    assert response.json()["status"] in ("queued", "running")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        run = client.get(f"/executions/{execution_id}", headers=headers).json()
        if run["status"] == "succeeded":
            break
        time.sleep(0.05)
    assert run["output"] == {"message": "later"}


def test_wait_timeout_answers_202_with_the_state_so_far(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = create(client, headers, [], scripted({"content": "slow"}, delay_ms=2000))
    response = execute(client, headers, agent_id, parameters={"wait": True, "timeout_s": 0.2})
    assert response.status_code == 202
    assert response.json()["status"] in ("queued", "running")


def test_cancel_a_running_execution(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = create(client, headers, [], scripted({"content": "slow"}, delay_ms=20_000))
    execution_id = execute(client, headers, agent_id, parameters={"wait": False}).json()[
        "execution_id"
    ]
    deadline = time.monotonic() + 30
    run = client.get(f"/executions/{execution_id}", headers=headers).json()
    while run["status"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.02)
        run = client.get(f"/executions/{execution_id}", headers=headers).json()
    assert run["status"] == "running", run  # cancelled mid-run, not before it started
    cancelled = client.post(f"/executions/{execution_id}/cancel", headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["error"] == "cancelled on request"
    assert cancelled.json()["attempts"] == 1
    again = client.post(f"/executions/{execution_id}/cancel", headers=headers)
    assert again.json()["status"] == "cancelled"


def test_result_cache(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = create(
        client, headers, [], scripted({"content": "cached answer"}) | {"cache_ttl_s": 60}
    )
    first = execute(client, headers, agent_id, input="same").json()
    second = execute(client, headers, agent_id, input="same").json()
    other = execute(client, headers, agent_id, input="different").json()
    assert first["cached"] is False
    assert second["cached"] is True
    assert second["output"] == first["output"]
    assert second["execution_id"] != first["execution_id"]
    assert other["cached"] is False


def test_thread_memory_feeds_earlier_turns(client: TestClient, make_user) -> None:
    headers = make_user()
    config = scripted({"echo": True}) | {"memory": "thread", "system_prompt": "Be brief."}
    agent_id = create(client, headers, [], config)
    first = execute(
        client, headers, agent_id, input="my name is Ana", parameters={"thread_id": "t1"}
    )
    assert first.json()["output"] == {"message": "system: Be brief.\nhuman: my name is Ana"}
    execute(client, headers, agent_id, input="unrelated", parameters={"thread_id": "other"})
    second = execute(
        client, headers, agent_id, input="what is my name?", parameters={"thread_id": "t1"}
    ).json()
    assert second["status"] == "succeeded"
    assert second["thread_id"] == "t1"
    # What the model received: the thread's earlier turn (its input and the reply), in order,
    # then the new input; nothing from the other thread.
    earlier_reply = "system: Be brief.\nhuman: my name is Ana"
    assert second["output"]["message"] == "\n".join(
        ["system: Be brief.", "human: my name is Ana", f"ai: {earlier_reply}",
         "human: what is my name?"]
    )  # fmt: skip
    stateless = create(client, headers, [], scripted({"content": "x"}))
    refused = execute(client, headers, stateless, parameters={"thread_id": "t1"})
    assert refused.status_code == 400


def test_list_executions_newest_first_with_cursor(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = create(client, headers, [], scripted({"content": "x"}))
    ids = [
        execute(client, headers, agent_id, input=f"n{i}").json()["execution_id"] for i in range(3)
    ]
    page = client.get(f"/agents/{agent_id}/executions?first=2", headers=headers).json()
    assert [run["execution_id"] for run in page["executions"]] == ids[::-1][:2]
    rest = client.get(
        f"/agents/{agent_id}/executions?first=2&after={page['next_cursor']}", headers=headers
    ).json()
    assert [run["execution_id"] for run in rest["executions"]] == [ids[0]]
    assert rest["next_cursor"] is None
    bad = client.get(f"/agents/{agent_id}/executions?after=garbage", headers=headers)
    assert bad.status_code == 400


def test_bad_execute_requests_queue_nothing(client: TestClient, make_user) -> None:
    owner, stranger = make_user(), make_user()
    agent_id = create(client, owner, [], scripted({"content": "x"}))
    cases = [
        (stranger, agent_id, {"input": "x"}, 404),
        (owner, str(uuid.uuid4()), {"input": "x"}, 404),
        (owner, "not-an-id", {"input": "x"}, 404),
        (owner, agent_id, {"input": ""}, 422),
        (owner, agent_id, {"input": "   "}, 422),
        (owner, agent_id, {"input": {}}, 422),
        (owner, agent_id, {"input": "x" * 100_001}, 422),
        (owner, agent_id, {}, 422),
        (owner, agent_id, {"input": "x", "parameters": {"timeout_s": 0}}, 422),
        (owner, agent_id, {"input": "x", "parameters": {"timeout_s": 10_000}}, 422),
        (owner, agent_id, {"input": "x", "parameters": {"webhook_url": "ftp://x"}}, 422),
        (owner, agent_id, {"input": "x", "parameters": {"executor": "gpu"}}, 422),
        (owner, agent_id, {"input": "x", "parameters": {"surprise": 1}}, 422),
        (owner, agent_id, {"input": "x", "parameters": {"executor": "rq"}}, 400),
    ]
    for headers, target, body, status in cases:
        response = client.post(f"/agents/{target}/execute", json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] != "INTERNAL"
    listed = client.get(f"/agents/{agent_id}/executions", headers=owner).json()
    assert listed["executions"] == []


def test_another_users_execution_is_invisible(client: TestClient, make_user) -> None:
    owner, stranger = make_user(), make_user()
    agent_id = create(client, owner, [], scripted({"content": "x"}))
    execution_id = execute(client, owner, agent_id).json()["execution_id"]
    for response in (
        client.get(f"/executions/{execution_id}", headers=stranger),
        client.post(f"/executions/{execution_id}/cancel", headers=stranger),
        client.get(f"/executions/{execution_id}/events", headers=stranger),
    ):
        assert response.status_code == 404


@pytest.mark.parametrize(("provider", "package"), [("anthropic", "langchain_anthropic"),
                                                   ("ollama", "langchain_ollama")])  # fmt: skip
def test_missing_provider_package_names_what_to_install(
    client: TestClient, make_user, monkeypatch: pytest.MonkeyPatch, provider: str, package: str
) -> None:
    # The tests install the optional extras (to run their factories against stubs); this run
    # sees them as absent, as on a server installed without them.
    monkeypatch.setitem(sys.modules, package, None)
    headers = make_user()
    run = execute(
        client, headers, create(client, headers, [], {"model": f"{provider}:some-model"})
    ).json()
    assert run["status"] == "failed"
    assert f"pip install 'pasar-core[{provider}]'" in run["error"]


def test_unreachable_redis_fails_the_run_with_503(pasar_settings) -> None:
    from pasar.app import create_app

    settings = pasar_settings.with_overrides(redis_url="redis://127.0.0.1:1/0")  # nothing listens
    with TestClient(create_app(settings)) as client:
        credentials = {
            "email": "redis-down@example.com",
            "password": "correct horse battery staple",
        }
        client.post("/auth/signup", json=credentials)
        headers = {
            "Authorization": "Bearer "
            + client.post("/auth/token", json=credentials).json()["access_token"]
        }
        agent_id = create(client, headers, [], scripted({"content": "x"}))
        response = execute(client, headers, agent_id)
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "UNAVAILABLE"
        run = client.get(f"/executions/{error['details']['execution_id']}", headers=headers).json()
        assert run["status"] == "failed"
        assert "rq executor" in run["error"]


def test_concurrent_runs_of_one_agent_keep_their_own_steps(client: TestClient, make_user) -> None:
    headers = make_user()
    config = scripted(
        {"tool_calls": [{"name": "txt_write", "args": {"path": "same.txt", "content": "x"}}]},
        {"content": "done"},
        delay_ms=50,
    )
    agent_id = create(client, headers, ["txt:write"], config)
    ids = [
        execute(client, headers, agent_id, input=f"run {i}", parameters={"wait": False}).json()[
            "execution_id"
        ]
        for i in range(12)
    ]
    deadline = time.monotonic() + 30
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = [client.get(f"/executions/{i}", headers=headers).json() for i in ids]
        if all(run["status"] == "succeeded" for run in runs):
            break
        time.sleep(0.1)
    for run in runs:
        assert run["status"] == "succeeded"
        types = [step["type"] for step in run["steps"]]
        assert types == ["model_call", "tool_call", "tool_result", "model_call"], run[
            "execution_id"
        ]
        call_id = run["steps"][0]["tool_calls"][0]["id"]
        assert run["steps"][1]["tool_call_id"] == run["steps"][2]["tool_call_id"] == call_id


def test_google_tools_on_a_server_without_google_oauth_fail_instead_of_waiting(
    client: TestClient, make_user
) -> None:
    headers = make_user()
    config = scripted({"tool_calls": [{"name": "gmail_read", "args": {}}]}, {"content": "x"})
    agent_id = create(client, headers, ["gmail:read"], config)
    run = execute(client, headers, agent_id).json()
    # No consent link can be made (PASAR_GOOGLE_CLIENT_ID is unset): the run says so and ends,
    # rather than waiting in awaiting_authorization for a link nobody was given.
    assert run["status"] == "failed", run
    assert run["error"].startswith("OAUTH_NOT_CONFIGURED: OAuth for 'google' is not configured")
    assert "PASAR_GOOGLE_CLIENT_ID" in run["error"]
    assert run["steps"] == []
    assert run["auth_url"] is None
