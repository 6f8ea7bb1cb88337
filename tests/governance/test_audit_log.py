"""The audit log: a row for each privileged action, written with the action; an organisation's
admins read its rows, the server's operator every row, over REST, GraphQL and the CLI; the rows
cannot be changed or removed."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Any

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from pasar_core.settings import Settings
from pasar_core.storage.db import async_url
from pasar_core.testing import TEST_PASSWORD
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from pasar.cli import main
from tests.governance.admins import cli_env, make_operator

AGENT = {"name": "notes", "tools": ["txt:read", "txt:write"],
         "config": {"model": "scripted", "model_options": {"script": [
             {"tool_calls": [{"name": "txt_write", "args": {"path": "a.txt", "content": "x"}}]},
             {"content": "done"}]}}}  # fmt: skip


def rows(client: TestClient, operator: dict[str, str], **filters: Any) -> list[dict[str, Any]]:
    response = client.get("/audit", params={"limit": 500, **filters}, headers=operator)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["rows"]
    return found


def user_id(client: TestClient, headers: dict[str, str]) -> str:
    me = client.post("/graphql", json={"query": "{ me { id } }"}, headers=headers).json()
    return str(me["data"]["me"]["id"])


def test_each_privileged_action_leaves_one_row(
    client: TestClient, make_user, pasar_settings: Settings
) -> None:
    operator = make_operator(client, pasar_settings)
    email = f"u-{uuid.uuid4().hex[:8]}@example.com"
    credentials = {"email": email, "password": TEST_PASSWORD}
    client.post("/auth/signup", json=credentials)
    assert (
        client.post("/auth/token", json={**credentials, "password": "wrong-password"}).status_code
        == 401
    )
    assert (
        client.post(
            "/auth/token", json={"email": "nobody@example.com", "password": "x" * 9}
        ).status_code
        == 401
    )
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "203.0.113.9"}
    me = user_id(client, headers)

    key = client.post("/api-keys", json={"name": "ci"}, headers=headers).json()
    assert client.delete(f"/api-keys/{key['id']}", headers=headers).status_code == 204
    agent_id = client.post("/agents", json=AGENT, headers=headers).json()["agent_id"]
    assert (
        client.put(f"/agents/{agent_id}", json={"name": "n2"}, headers=headers).status_code == 200
    )
    run = client.post(f"/agents/{agent_id}/execute", json={"input": "go"}, headers=headers).json()
    assert run["status"] == "succeeded", run
    assert client.delete(f"/agents/{agent_id}", headers=headers).status_code == 204

    mine = rows(client, operator, actor_id=me)
    actions = [row["action"] for row in reversed(mine)]  # oldest first
    assert actions == [
        "auth.login_failed", "auth.login", "api_key.created", "api_key.revoked",
        "agent.created", "agent.updated", "execution.started", "execution.tool_call",
        "agent.deleted",
    ], actions  # fmt: skip
    by_action = {row["action"]: row for row in mine}
    assert by_action["auth.login_failed"]["outcome"] == "failed"
    assert by_action["auth.login_failed"]["details"] == {"reason": "wrong_password"}
    assert by_action["api_key.created"]["target_id"] == key["id"]
    assert by_action["api_key.created"]["source"] == "peer:testclient"  # no trusted proxy
    assert by_action["agent.created"]["target_id"] == agent_id
    assert by_action["agent.updated"]["details"] == {"changed": ["name"], "version": 2}
    assert by_action["execution.started"]["target_id"] == run["execution_id"]
    tool_call = by_action["execution.tool_call"]
    assert tool_call["details"]["tool"] == "txt:write"
    assert tool_call["details"]["agent_id"] == agent_id
    assert tool_call["scopes"] is None  # a tool without provider scopes
    # No secret ever lands in a row: not the API key, the password or the tool's arguments.
    text = json.dumps(mine)
    assert key["key"] not in text
    assert TEST_PASSWORD not in text
    assert '"content"' not in text
    unknown = rows(client, operator, action="auth.login_failed")
    assert any(
        r["actor_id"] is None and r["details"] == {"reason": "unknown_email"} for r in unknown
    )
    # The operator's role change is there too, done from the CLI.
    made = rows(client, operator, action="user.operator_changed")
    assert [(r["actor_via"], r["details"]["to"]) for r in made] == [("cli", True)]


def test_filters_and_pages(client: TestClient, make_user, pasar_settings: Settings) -> None:
    operator = make_operator(client, pasar_settings)
    headers = make_user()
    made = [client.post("/agents", json={"name": f"a{i}", "tools": ["txt:read"]},
                        headers=headers).json()["agent_id"] for i in range(5)]  # fmt: skip
    seen: list[str] = []
    before: int | None = None
    while True:
        params: dict[str, Any] = {"action": "agent.", "limit": 2}
        if before is not None:
            params["before_id"] = before
        page = client.get("/audit", params=params, headers=operator).json()
        seen += [row["target_id"] for row in page["rows"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == list(reversed(made))
    one = rows(client, operator, target_type="agent", target_id=made[2])
    assert [row["action"] for row in one] == ["agent.created"]
    assert rows(client, operator, action="agent.created", until="2000-01-01T00:00:00Z") == []
    assert len(rows(client, operator, action="agent.created", since="2000-01-01T00:00:00Z")) == 5


def test_an_admin_reads_their_organisation_and_the_operator_everything(
    client: TestClient, make_user, pasar_settings: Settings
) -> None:
    """Every user is the admin of their personal organisation: they read its rows only, never
    a row of no organisation (the operator's CLI changes); the operator reads those too.
    Members and viewers are refused: test_audit_organisations."""
    admin = make_user()
    client.post("/agents", json={"name": "mine", "tools": []}, headers=admin)
    assert client.get("/audit").status_code == 401
    own = client.get("/audit", headers=admin).json()["rows"]
    assert [row["action"] for row in own] == ["agent.created"]
    answer = client.post("/graphql", json={"query": """{ auditLog(action: "user.")
        { entries { action } } scopeUsage { scope } }"""}, headers=admin).json()  # fmt: skip
    assert answer["data"]["auditLog"]["entries"] == []
    operator = make_operator(client, pasar_settings)
    answer = client.post("/graphql", json={"query": """{ auditLog(action: "user.operator_changed")
        { entries { action actorVia details } nextBefore } scopeUsage { scope } }"""},
                         headers=operator).json()  # fmt: skip
    assert "errors" not in answer, answer
    entries = answer["data"]["auditLog"]["entries"]
    assert [(e["action"], e["actorVia"]) for e in entries] == [("user.operator_changed", "cli")]
    assert answer["data"]["scopeUsage"] == []


def test_hostile_filters_are_typed_4xx(client: TestClient, pasar_settings: Settings) -> None:
    operator = make_operator(client, pasar_settings)
    names = st.sampled_from(["actor_id", "action", "target_id", "since", "until", "before_id",
                             "limit", "target_type", "bogus"])  # fmt: skip

    @settings(max_examples=60, deadline=None)
    @given(name=names, value=st.text(max_size=300))
    def check(name: str, value: str) -> None:
        response = client.get("/audit", params={name: value}, headers=operator)
        assert response.status_code in (200, 400, 422), response.text
        if response.status_code != 200:
            assert response.json()["error"]["code"] in ("BAD_REQUEST", "VALIDATION_FAILED")
        usage = client.get("/audit/scope-usage", params={"since": value, "format": value[:5]},
                           headers=operator)  # fmt: skip
        assert usage.status_code in (200, 400), usage.text

    check()


def test_rows_cannot_be_updated_deleted_or_truncated(
    client: TestClient, make_user, pasar_settings: Settings
) -> None:
    make_user()  # a sign-in row at least
    url = async_url(pasar_settings.database_url or "")

    async def attempt(statement: str) -> str:
        from sqlalchemy import text

        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text(statement))
        except DBAPIError as refused:
            return str(refused.orig)
        finally:
            await engine.dispose()
        return "allowed"

    async def count() -> int:
        from sqlalchemy import text

        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return int(
                    (await conn.execute(text("SELECT count(*) FROM audit_log"))).scalar_one()
                )
        finally:
            await engine.dispose()

    before = asyncio.run(count())
    assert before >= 1
    for statement in ("UPDATE audit_log SET action = 'forged'",
                      "DELETE FROM audit_log",
                      "TRUNCATE audit_log"):  # fmt: skip
        refused = asyncio.run(attempt(statement))
        assert "append-only" in refused, (statement, refused)
    assert asyncio.run(count()) == before


def test_cli_lists_and_exports(client: TestClient, make_user, pasar_settings: Settings) -> None:
    headers = make_user()
    client.post("/agents", json={"name": "cli", "tools": ["txt:read"]}, headers=headers)
    env = cli_env(pasar_settings)
    listed = CliRunner().invoke(
        main, ["audit", "list", "--action", "agent.created", "--json"], env=env
    )
    assert listed.exit_code == 0, listed.output
    lines = [json.loads(line) for line in listed.output.splitlines()]
    assert [line["action"] for line in lines] == ["agent.created"]
    bad = CliRunner().invoke(main, ["audit", "list", "--actor", "not-a-uuid"], env=env)
    assert bad.exit_code == 1, bad.output
    assert "Traceback" not in bad.output
    exported = CliRunner().invoke(main, ["audit", "scope-usage", "--csv"], env=env)
    assert exported.exit_code == 0, exported.output
    assert (
        exported.output.splitlines()[0] == "provider,scope,calls,agents,tools,first_used,last_used"
    )
    bad_time = CliRunner().invoke(main, ["audit", "scope-usage", "--since", "yesterday"], env=env)
    assert bad_time.exit_code == 2


def test_approvals_and_custom_tools_leave_rows(
    client: TestClient, make_user, pasar_settings: Settings
) -> None:
    operator = make_operator(client, pasar_settings)
    headers = make_user()
    write = {"tool_calls": [{"name": "txt_write", "args": {"path": "a.txt", "content": "x"}}]}
    config = {"model": "scripted", "approval": {"require_for": ["write"]},
              "model_options": {"script": [write, write, {"content": "done"}]}}  # fmt: skip
    agent_id = client.post("/agents", json={"name": "careful", "tools": ["txt:write"],
                                            "config": config}, headers=headers).json()["agent_id"]  # fmt: skip
    paused = client.post(
        f"/agents/{agent_id}/execute", json={"input": "go"}, headers=headers
    ).json()
    assert paused["status"] == "awaiting_approval", paused
    execution_id = paused["execution_id"]
    again = client.post(f"/executions/{execution_id}/approval", json={"decision": "approve"},
                        headers=headers).json()  # fmt: skip
    assert again["status"] == "awaiting_approval", again
    client.post(
        f"/executions/{execution_id}/approval", json={"decision": "reject"}, headers=headers
    )
    decisions = rows(client, operator, target_type="execution", target_id=execution_id)
    kinds = [row["action"] for row in reversed(decisions)]
    assert kinds[0] == "execution.started"
    assert [k for k in kinds if k.startswith("approval.")] == [
        "approval.approved",
        "approval.rejected",
    ]
    assert kinds.count("execution.tool_call") == 1  # the approved call ran; the rejected did not
    assert all(
        row["source"] == "peer:testclient"
        for row in decisions
        if row["action"].startswith("approval.")
    )

    tool = {"id": "acme:total", "title": "Total", "description": "Adds.", "effect": "read",
            "input_schema": {"type": "object"}, "output_schema": {"type": "object"},
            "implementation": {"kind": "python", "source": "def run(args):\n    return {}\n",
                               "entrypoint": "run"}}  # fmt: skip
    assert client.post("/tools", json=tool, headers=headers).status_code == 201
    assert client.put("/tools/acme:total", json=tool, headers=headers).status_code == 200
    assert client.delete("/tools/acme:total", headers=headers).status_code == 204
    changes = rows(client, operator, action="tool.", target_id="acme:total")
    assert [(r["action"], r["details"].get("version")) for r in reversed(changes)] == [
        ("tool.registered", 1), ("tool.updated", 2), ("tool.deleted", None),
    ]  # fmt: skip


def test_a_row_names_the_api_key_it_was_done_with(
    client: TestClient, make_user, pasar_settings: Settings
) -> None:
    operator = make_operator(client, pasar_settings)
    key = client.post("/api-keys", json={"name": "ci"}, headers=make_user()).json()
    created = client.post(
        "/agents", json={"name": "k", "tools": []}, headers={"X-API-Key": key["key"]}
    )
    assert created.status_code == 201, created.text
    [row] = rows(client, operator, action="agent.created", target_id=created.json()["agent_id"])
    assert (row["actor_via"], row["api_key_id"]) == ("api_key", key["id"])


def test_one_row_has_one_shape_on_every_surface(
    client: TestClient, make_user, pasar_settings: Settings
) -> None:
    """The same row through REST, the CLI's JSON lines and the data export is the same JSON;
    GraphQL carries the same values under its camel-case names."""
    operator = make_operator(client, pasar_settings)
    headers = make_user()
    me = user_id(client, headers)
    agent = client.post("/agents", json={"name": "shape", "tools": ["txt:read"]}, headers=headers)
    assert agent.status_code == 201, agent.text
    [rest] = rows(client, operator, actor_id=me, action="agent.created")
    assert sorted(rest) == sorted(
        ["id", "at", "actor_id", "actor_via", "organisation_id", "api_key_id", "action",
         "outcome", "target_type", "target_id", "source", "provider", "scopes", "details"]
    )  # fmt: skip
    assert (rest["actor_id"], rest["target_id"]) == (me, agent.json()["agent_id"])

    listed = CliRunner().invoke(main, ["audit", "list", "--actor", me, "--action",
                                       "agent.created", "--json"], env=cli_env(pasar_settings))  # fmt: skip
    assert listed.exit_code == 0, listed.output
    assert [json.loads(line) for line in listed.output.splitlines()] == [rest]

    exported = client.get("/me/export", headers=headers).json()["audit_log"]
    assert [row for row in exported if row["id"] == rest["id"]] == [rest]

    fields = ("id at actorId actorVia organisationId apiKeyId action outcome targetType "
              "targetId source provider scopes details")  # fmt: skip
    document = ("query($a: ID!) { auditLog(actorId: $a, action: \"agent.created\") "
                f"{{ entries {{ {fields} }} }} }}")  # fmt: skip
    answer = client.post("/graphql", json={"query": document, "variables": {"a": me}},
                         headers=operator).json()  # fmt: skip
    [entry] = answer["data"]["auditLog"]["entries"]
    snake = {"".join(f"_{c.lower()}" if c.isupper() else c for c in k): v for k, v in entry.items()}
    assert datetime.fromisoformat(snake.pop("at")) == datetime.fromisoformat(rest["at"])
    assert snake == {**{k: v for k, v in rest.items() if k != "at"}, "id": str(rest["id"])}
