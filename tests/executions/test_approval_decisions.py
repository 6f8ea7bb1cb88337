"""The approval matrix: several pending calls decided at once (approve, reject, edit), each
decision bound to the hash of the arguments shown and used once, pauses that expire, and every
decision that cannot apply refused with a typed error that changes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pasar_core.executions.recovery import Reconciler
from pasar_core.settings import Settings
from pasar_core.storage.db import async_url
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from pasar.app import create_app


def write(path: str, content: str) -> dict[str, Any]:
    return {"name": "txt_write", "args": {"path": path, "content": content}}


THREE_WRITES = {"tool_calls": [write("a.txt", "one"), write("b.txt", "two"), write("c.txt", "3")]}
READ_ALL = {
    "tool_calls": [
        {"name": "txt_read", "args": {"path": name}} for name in ("a.txt", "b.txt", "c.txt")
    ]
}


def paused_run(
    client: TestClient, headers: dict[str, str], *replies: dict[str, Any]
) -> dict[str, Any]:
    config = {"model": "scripted", "model_options": {"script": list(replies)},
              "approval": {"require_for": ["write"]}}  # fmt: skip
    body = {"name": "careful", "tools": ["txt:write", "txt:read"], "config": config}
    created = client.post("/agents", json=body, headers=headers)
    assert created.status_code == 201, created.text
    agent_id = created.json()["agent_id"]
    run = client.post(f"/agents/{agent_id}/execute", json={"input": "go"}, headers=headers).json()
    assert run["status"] == "awaiting_approval", run
    return dict(run)


def decide(
    client: TestClient, headers: dict[str, str], run: dict[str, Any], body: dict[str, Any]
) -> Any:
    return client.post(f"/executions/{run['execution_id']}/approval", json=body, headers=headers)


def by_path(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {call["args"]["path"]: call for call in run["pending_approvals"]}


def decision(call: dict[str, Any], kind: str, **extra: Any) -> dict[str, Any]:
    return {"tool_call_id": call["tool_call_id"], "decision": kind,
            "args_hash": call["args_hash"]} | extra  # fmt: skip


def error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def sql(settings: Settings, statement: str, **params: Any) -> list[Any]:
    async def go() -> list[Any]:
        engine = create_async_engine(async_url(settings.database_url or ""))
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement), params)
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_mixed_decisions_in_one_pause(client: TestClient, make_user) -> None:
    headers = make_user()
    run = paused_run(client, headers, THREE_WRITES, READ_ALL, {"content": "done"})
    calls = by_path(run)
    assert set(calls) == {"a.txt", "b.txt", "c.txt"}  # every gated call of the reply waits
    assert run["pending_approval"] == run["pending_approvals"][0]
    assert run["approval_expires_at"] is not None
    body = {"decisions": [
        decision(calls["a.txt"], "approve"),
        decision(calls["b.txt"], "edit", args={"path": "b.txt", "content": "edited"}),
        decision(calls["c.txt"], "reject", note="not this one"),
    ]}  # fmt: skip
    response = decide(client, headers, run, body)
    assert response.status_code == 200, response.text
    done = response.json()
    assert done["status"] == "succeeded", done
    writes = {s["args"]["path"]: s for s in done["steps"] if s["type"] == "tool_call"
              and s["tool"] == "txt:write"}  # fmt: skip
    assert set(writes) == {"a.txt", "b.txt"}  # the rejected write never ran
    assert writes["b.txt"]["edited"] is True  # the edit is recorded in the steps
    assert writes["b.txt"]["args"] == {"path": "b.txt", "content": "edited"}
    assert writes["b.txt"]["model_args"] == {"path": "b.txt", "content": "two"}
    assert "edited" not in writes["a.txt"]
    results = {s["tool_call_id"]: s for s in done["steps"] if s["type"] == "tool_result"}
    assert results[calls["c.txt"]["tool_call_id"]]["error"].startswith("REJECTED")
    read_paths = {s["tool_call_id"]: s["args"]["path"] for s in done["steps"]
                  if s["type"] == "tool_call" and s["tool"] == "txt:read"}  # fmt: skip
    contents = {read_paths[call_id]: result.get("result", {}).get("content")
                for call_id, result in results.items() if call_id in read_paths}  # fmt: skip
    assert contents == {"a.txt": "one", "b.txt": "edited", "c.txt": None}  # as decided


def test_a_decision_is_used_once(client: TestClient, make_user) -> None:
    headers = make_user()
    run = paused_run(client, headers, THREE_WRITES, {"content": "done"})
    body = {"decisions": [decision(call, "approve") for call in run["pending_approvals"]]}
    assert decide(client, headers, run, body).status_code == 200
    replayed = decide(client, headers, run, body)
    assert replayed.status_code == 409
    assert error_code(replayed) == "APPROVAL_ALREADY_DECIDED"
    after = client.get(f"/executions/{run['execution_id']}", headers=headers).json()
    assert sum(s["type"] == "tool_call" for s in after["steps"]) == 3  # nothing ran twice


def test_concurrent_identical_decisions_resume_the_run_once(client: TestClient, make_user) -> None:
    headers = make_user()
    run = paused_run(client, headers, THREE_WRITES, {"content": "done"})
    body = {"decisions": [decision(call, "approve") for call in run["pending_approvals"]]}
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: decide(client, headers, run, body), range(2)))
    codes = sorted(answer.status_code for answer in answers)
    assert codes[0] in (200, 202), [a.text for a in answers]
    assert codes[1] == 409, [a.text for a in answers]
    refused = next(answer for answer in answers if answer.status_code == 409)
    assert error_code(refused) == "APPROVAL_ALREADY_DECIDED"
    events = client.get(f"/executions/{run['execution_id']}", headers=headers).json()
    assert sum(s["type"] == "tool_call" for s in events["steps"]) == 3


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        # a hash of other arguments (another call's): stale
        (lambda calls: [decision(calls["a.txt"], "approve", args_hash=calls["b.txt"]["args_hash"]),
                        decision(calls["b.txt"], "approve"), decision(calls["c.txt"], "approve")],
         409, "APPROVAL_STALE"),
        # a call the run does not wait on
        (lambda calls: [decision(calls["a.txt"], "approve"), decision(calls["b.txt"], "approve"),
                        decision(calls["c.txt"], "approve"),
                        {"tool_call_id": "call_nope", "decision": "approve", "args_hash": "0" * 64}],
         409, "APPROVAL_NOT_PENDING"),
        # pending calls left undecided
        (lambda calls: [decision(calls["a.txt"], "approve")], 422, "APPROVAL_INCOMPLETE"),
        # an edit the tool's input schema refuses
        (lambda calls: [decision(calls["a.txt"], "edit", args={"path": "a.txt"}),
                        decision(calls["b.txt"], "approve"), decision(calls["c.txt"], "approve")],
         422, "TOOL_INPUT_INVALID"),
        (lambda calls: [decision(calls["a.txt"], "edit", args={"path": 7, "content": "x"}),
                        decision(calls["b.txt"], "approve"), decision(calls["c.txt"], "approve")],
         422, "TOOL_INPUT_INVALID"),
        # malformed: args with an approval, an edit without args, two decisions for one call
        (lambda calls: [decision(calls["a.txt"], "approve", args={"path": "x", "content": "y"})],
         422, "VALIDATION_FAILED"),
        (lambda calls: [decision(calls["a.txt"], "edit")], 422, "VALIDATION_FAILED"),
        (lambda calls: [decision(calls["a.txt"], "approve"), decision(calls["a.txt"], "reject")],
         422, "VALIDATION_FAILED"),
        (lambda calls: [decision(calls["a.txt"], "maybe")], 422, "VALIDATION_FAILED"),
        (lambda calls: [decision(calls["a.txt"], "approve", args_hash="abc")], 422,
         "VALIDATION_FAILED"),
    ],
)  # fmt: skip
def test_refused_decisions_change_nothing(
    client: TestClient, make_user, change: Any, status: int, code: str
) -> None:
    headers = make_user()
    run = paused_run(client, headers, THREE_WRITES, {"content": "done"})
    response = decide(client, headers, run, {"decisions": change(by_path(run))})
    assert response.status_code == status, response.text
    assert error_code(response) == code
    after = client.get(f"/executions/{run['execution_id']}", headers=headers).json()
    assert after["status"] == "awaiting_approval"
    assert after["steps"] == run["steps"]
    assert after["pending_approvals"] == run["pending_approvals"]
    # ... and the right decisions still work afterwards
    body = {"decisions": [decision(call, "approve") for call in run["pending_approvals"]]}
    assert decide(client, headers, run, body).json()["status"] == "succeeded"


def test_the_single_form_needs_a_lone_pending_call(client: TestClient, make_user) -> None:
    headers = make_user()
    run = paused_run(client, headers, THREE_WRITES, {"content": "done"})
    response = decide(client, headers, run, {"decision": "approve"})
    assert response.status_code == 422
    assert error_code(response) == "APPROVAL_INCOMPLETE"
    both = decide(client, headers, run, {"decision": "approve", "decisions": []})
    assert error_code(both) == "VALIDATION_FAILED"


def test_a_finished_run_or_another_users_run_takes_no_decision(
    client: TestClient, make_user
) -> None:
    owner, stranger = make_user(), make_user()
    run = paused_run(client, owner, THREE_WRITES, {"content": "done"})
    body = {"decisions": [decision(call, "approve") for call in run["pending_approvals"]]}
    foreign = decide(client, stranger, run, body)
    assert foreign.status_code == 404  # another user's run is reported as missing
    cancelled = client.post(f"/executions/{run['execution_id']}/cancel", headers=owner)
    assert cancelled.json()["status"] == "cancelled"
    late = decide(client, owner, run, body)
    assert late.status_code == 409
    assert error_code(late) == "APPROVAL_NOT_PENDING"


@pytest.fixture
def expiring_client(pasar_settings: Settings) -> Iterator[TestClient]:
    """Pauses that expire the moment they start (`approval_ttl_s` 0)."""
    settings = dataclasses.replace(pasar_settings, approval_ttl_s=0.0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def signed_up(client: TestClient) -> dict[str, str]:
    from pasar_core.testing import TEST_PASSWORD

    credentials = {"email": "expiring@example.com", "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_an_expired_pause_ends_the_run_and_refuses_late_decisions(
    expiring_client: TestClient,
) -> None:
    client = expiring_client
    headers = signed_up(client)
    run = paused_run(client, headers, THREE_WRITES, {"content": "done"})
    body = {"decisions": [decision(call, "approve") for call in run["pending_approvals"]]}
    late = decide(client, headers, run, body)
    assert late.status_code == 410, late.text
    assert error_code(late) == "APPROVAL_EXPIRED"
    ended = client.get(f"/executions/{run['execution_id']}", headers=headers).json()
    assert ended["status"] == "failed"
    assert ended["error"].startswith("APPROVAL_EXPIRED")
    assert not any(s["type"] == "tool_call" for s in ended["steps"])  # nothing ran
    again = decide(client, headers, run, body)
    assert (again.status_code, error_code(again)) == (410, "APPROVAL_EXPIRED")


def test_the_sweep_ends_expired_pauses_only(
    client: TestClient, make_user, pasar_settings: Settings
) -> None:
    headers = make_user()
    due = paused_run(client, headers, THREE_WRITES, {"content": "done"})
    waiting = paused_run(client, headers, THREE_WRITES, {"content": "done"})
    stored = sql(pasar_settings, "SELECT approval_expires_at FROM executions WHERE id = :id",
                 id=waiting["execution_id"])  # fmt: skip
    assert stored[0][0].isoformat() == waiting["approval_expires_at"].replace("Z", "+00:00")
    sql(pasar_settings, "UPDATE executions SET approval_expires_at = now() - interval '1 second'"
        " WHERE id = :id", id=due["execution_id"])  # fmt: skip

    async def sweep() -> int:  # one pass of a server's reconciler
        engine = create_async_engine(async_url(pasar_settings.database_url or ""))
        reconciler = Reconciler(engine, pasar_settings, owner="test", submit_inline=None,
                                rq=None, local=set)  # fmt: skip
        try:
            return await reconciler.tick()
        finally:
            await engine.dispose()

    assert asyncio.run(sweep()) == 1
    ended = client.get(f"/executions/{due['execution_id']}", headers=headers).json()
    assert (ended["status"], ended["error"][:16]) == ("failed", "APPROVAL_EXPIRED")
    still = client.get(f"/executions/{waiting['execution_id']}", headers=headers).json()
    assert still["status"] == "awaiting_approval"
    assert asyncio.run(sweep()) == 0


MUTATION = """
mutation($id: ID!, $decisions: [CallDecisionInput!]) {
  decideApproval(id: $id, decisions: $decisions) { status steps }
}"""


def camel(decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = {"tool_call_id": "toolCallId", "args_hash": "argsHash"}
    return [{names.get(key, key): value for key, value in item.items()} for item in decisions]


def test_graphql_mixed_decisions_and_typed_errors(client: TestClient, make_user) -> None:
    headers = make_user()
    run = paused_run(client, headers, THREE_WRITES, {"content": "done"})
    read = {"query": "query($id: ID!) { execution(id: $id) { pendingApprovals approvalExpiresAt } }",
            "variables": {"id": run["execution_id"]}}  # fmt: skip
    shown = client.post("/graphql", json=read, headers=headers).json()["data"]["execution"]
    assert shown["pendingApprovals"] == run["pending_approvals"]
    calls = by_path(run)
    stale = [decision(calls["a.txt"], "approve", args_hash="f" * 64),
             decision(calls["b.txt"], "approve"), decision(calls["c.txt"], "approve")]  # fmt: skip
    variables = {"id": run["execution_id"], "decisions": camel(stale)}
    refused = client.post("/graphql", json={"query": MUTATION, "variables": variables},
                          headers=headers).json()  # fmt: skip
    assert refused["errors"][0]["extensions"]["code"] == "APPROVAL_STALE"
    mixed = [decision(calls["a.txt"], "reject"),
             decision(calls["b.txt"], "edit", args={"path": "b.txt", "content": "gql"}),
             decision(calls["c.txt"], "approve")]  # fmt: skip
    variables = {"id": run["execution_id"], "decisions": camel(mixed)}
    result = client.post("/graphql", json={"query": MUTATION, "variables": variables},
                         headers=headers).json()  # fmt: skip
    done = result["data"]["decideApproval"]
    assert done["status"] == "succeeded", result
    ran = [s["args"] for s in done["steps"] if s["type"] == "tool_call"]
    assert ran == [{"path": "b.txt", "content": "gql"}, {"path": "c.txt", "content": "3"}]
    replay = client.post("/graphql", json={"query": MUTATION, "variables": variables},
                         headers=headers).json()  # fmt: skip
    assert replay["errors"][0]["extensions"]["code"] == "APPROVAL_ALREADY_DECIDED"


def test_an_earlier_decision_replayed_on_the_next_pause_is_refused(
    client: TestClient, make_user
) -> None:
    headers = make_user()
    first_reply = {"tool_calls": [write("a.txt", "one")]}
    second_reply = {"tool_calls": [write("b.txt", "two")]}
    run = paused_run(client, headers, first_reply, second_reply, {"content": "done"})
    first = {"decisions": [decision(run["pending_approvals"][0], "approve")]}
    again = decide(client, headers, run, first).json()
    assert again["status"] == "awaiting_approval"  # paused on the next reply's write
    assert again["pending_approval"]["args"]["path"] == "b.txt"
    replayed = decide(client, headers, run, first)
    assert (replayed.status_code, error_code(replayed)) == (409, "APPROVAL_ALREADY_DECIDED")
    after = client.get(f"/executions/{run['execution_id']}", headers=headers).json()
    assert after["steps"] == again["steps"]
    assert after["pending_approvals"] == again["pending_approvals"]
    second = {"decisions": [decision(again["pending_approvals"][0], "approve")]}
    assert decide(client, headers, run, second).json()["status"] == "succeeded"


def test_made_up_decisions_on_a_paused_run_are_typed_refusals_that_change_nothing(
    client: TestClient, make_user
) -> None:
    headers = make_user()
    run = paused_run(client, headers, THREE_WRITES, {"content": "done"})
    ids = [call["tool_call_id"] for call in run["pending_approvals"]]
    hashes = [call["args_hash"] for call in run["pending_approvals"]]
    one = st.fixed_dictionaries(
        {
            "tool_call_id": st.sampled_from(ids) | st.text(max_size=30),
            "decision": st.sampled_from(["approve", "reject", "edit", "maybe"]),
            "args_hash": st.sampled_from(hashes) | st.text(alphabet="0123456789abcdef",
                                                           min_size=64, max_size=64),
        },
        optional={
            "args": st.dictionaries(st.sampled_from(["path", "content", "mode", "x"]),
                                    st.none() | st.integers() | st.text(max_size=20)),
            "note": st.text(max_size=50),
        },
    )  # fmt: skip

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
    @given(decisions=st.lists(one, min_size=1, max_size=2))
    def attack(decisions: list[dict[str, Any]]) -> None:
        response = decide(client, headers, run, {"decisions": decisions})
        assert 400 <= response.status_code < 500, response.text[:300]
        assert response.json()["error"]["code"]

    attack()  # fewer than three decisions never decide the pause
    after = client.get(f"/executions/{run['execution_id']}", headers=headers).json()
    assert after["status"] == "awaiting_approval"
    assert after["steps"] == run["steps"]
