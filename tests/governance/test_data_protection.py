"""Data protection: a user's export of everything about them, the erasure of their account
(no row, file, token, grant or job of theirs left: every table is searched for their id and
email), the last admin's refusal, and the organisations' retention job."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pasar_core.objects import LocalObjectStore
from pasar_core.privacy.retention import apply_retention
from pasar_core.settings import Settings
from pasar_core.storage.db import async_url
from pasar_core.storage.models import Base
from pasar_core.testing import TEST_PASSWORD
from pasar_google_workspace.testing import RunningEmulator
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.consent import Browser
from tests.support.redis_server import redis_server
from tests.support.teams import in_new_team, join

WRITE = {"tool_calls": [{"name": "txt_write", "args": {"path": "notes/a.txt", "content": "x"}}]}
AGENT = {"name": "notes", "tools": ["txt:write"],
         "config": {"model": "scripted", "model_options": {"script": [WRITE, {"content": "ok"}]}}}  # fmt: skip
KEPT_WITH_THE_ID = {"audit_log", "revoked_sessions"}
"""Tables that keep an erased user's id (never their email): the append-only audit log, and
the denylist of their sessions until their access tokens have expired."""


def signed_up(client: TestClient) -> tuple[str, dict[str, str], str]:
    email = f"d-{uuid.uuid4().hex[:8]}@example.com"
    credentials = {"email": email, "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    me = client.post("/graphql", json={"query": "{ me { id } }"}, headers=headers).json()
    return email, headers, str(me["data"]["me"]["id"])


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


def tables_naming(settings: Settings, needle: str) -> set[str]:
    """Every table of the schema with a row whose text (all columns, JSON included) holds
    `needle`."""
    found = set()
    for table in Base.metadata.sorted_tables:
        hits = sql(settings, f'SELECT count(*) FROM "{table.name}" t WHERE t::text LIKE :n',
                   n=f"%{needle}%")  # fmt: skip
        if hits[0][0]:
            found.add(table.name)
    return found


@pytest.fixture
def app(google_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(google_settings)) as client:
        yield client


def test_export_holds_everything_about_the_user_and_no_secret(client: TestClient) -> None:
    email, headers, _user_id = signed_up(client)
    agent = client.post("/agents", json=AGENT, headers=headers).json()
    secret = "s3cret-value-" + uuid.uuid4().hex
    assert client.put(f"/agents/{agent['agent_id']}/secrets/postgres_dsn", json={"value": secret},
                      headers=headers).status_code == 204  # fmt: skip
    run = client.post(f"/agents/{agent['agent_id']}/execute", json={"input": "go"},
                      headers=headers).json()  # fmt: skip
    assert run["status"] == "succeeded", run
    key = client.post("/api-keys", json={"name": "ci"}, headers=headers).json()
    _, stranger, stranger_id = signed_up(client)
    client.post("/agents", json={"name": "theirs", "tools": []}, headers=stranger)

    response = client.get("/me/export", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].startswith("attachment")
    data = response.json()
    assert data["format"] == "pasar-export/1"
    assert data["account"]["email"] == email
    assert "password_hash" not in data["account"]
    assert [m["role"] for m in data["memberships"]] == ["admin"]
    [exported] = data["agents"]
    assert exported["id"] == agent["agent_id"]
    assert exported["tools"] == ["txt:write"]
    assert exported["secret_names"] == ["postgres_dsn"]
    [execution] = data["executions"]
    assert execution["id"] == run["execution_id"]
    assert execution["input"] == "go"
    assert [e["seq"] for e in execution["events"]] == list(range(1, len(execution["events"]) + 1))
    [exported_key] = data["api_keys"]
    assert exported_key["prefix"] == key["prefix"]
    assert "key_hash" not in exported_key
    assert {r["action"] for r in data["audit_log"]} >= {"auth.login", "agent.created",
                                                        "api_key.created", "execution.started"}  # fmt: skip
    assert [f["path"] for f in data["files"]] == ["notes/a.txt"]
    everything = response.text
    assert secret not in everything
    assert key["key"] not in everything
    assert TEST_PASSWORD not in everything
    assert stranger_id not in everything  # nothing of another user

    answer = client.post("/graphql", json={"query": "{ exportMyData }"}, headers=headers).json()
    assert "errors" not in answer, answer
    assert answer["data"]["exportMyData"]["agents"][0]["id"] == agent["agent_id"]
    assert client.get("/me/export").status_code == 401


def test_erasure_leaves_no_row_file_token_grant_or_job(
    app: TestClient, google_settings: Settings, google_emulator: RunningEmulator
) -> None:
    email, headers, user_id = signed_up(app)
    agent = app.post("/agents", json={**AGENT, "tools": ["txt:write", "gmail:read"]},
                     headers=headers).json()  # fmt: skip
    assert Browser(app).connect(agent["auth_url"]).status_code == 200
    run = app.post(f"/agents/{agent['agent_id']}/execute", json={"input": "go"},
                   headers=headers).json()  # fmt: skip
    assert run["status"] == "succeeded", run
    key = app.post("/api-keys", json={"name": "ci"}, headers=headers).json()
    tool = {"id": f"t{uuid.uuid4().hex[:6]}:total", "title": "Total", "description": "Adds.",
            "effect": "read", "input_schema": {"type": "object"},
            "output_schema": {"type": "object"},
            "implementation": {"kind": "python", "source": "def run(args):\n    return {}\n",
                               "entrypoint": "run"}}  # fmt: skip
    assert app.post("/tools", json=tool, headers=headers).status_code == 201
    queued = app.post(f"/agents/{agent['agent_id']}/execute",
                      json={"input": "later", "parameters": {"wait": False}},
                      headers=headers).json()  # fmt: skip
    _, other, other_id = signed_up(app)
    kept = app.post("/agents", json={"name": "kept", "tools": []}, headers=other).json()
    other_team, _ = in_new_team(app, other)  # a pending invitation addressed to the user
    assert app.post("/invitations", json={"email": email}, headers=other_team).status_code == 201
    assert "invitations" in tables_naming(google_settings, email)
    assert google_settings.files_root.joinpath(user_id).exists()
    assert "users" in tables_naming(google_settings, user_id)

    # Nobody else can be named; the password is asked.
    wrong = app.request("DELETE", "/me", json={"password": "not-my-password"}, headers=headers)
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "WRONG_PASSWORD"
    named = app.request("DELETE", "/me", json={"password": TEST_PASSWORD, "user_id": other_id},
                        headers=headers)  # fmt: skip
    assert named.status_code == 422, named.text
    answer = app.post("/graphql", headers=headers, json={"query": "mutation($u: ID!) { "
                      "deleteMyAccount(password: \"x\", userId: $u) }", "variables": {"u": other_id}}).json()  # fmt: skip
    assert answer["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert app.request("DELETE", "/me", json={"password": TEST_PASSWORD}).status_code == 401

    erased = app.request("DELETE", "/me", json={"password": TEST_PASSWORD}, headers=headers)
    assert erased.status_code == 204, erased.text
    assert google_emulator.state.hits["revoke"] == 1
    assert google_emulator.state.refresh_tokens == {}
    assert not google_settings.files_root.joinpath(user_id).exists() or not any(
        google_settings.files_root.joinpath(user_id).rglob("*.txt")
    )
    assert tables_naming(google_settings, user_id) <= KEPT_WITH_THE_ID
    assert tables_naming(google_settings, email) == set()
    # The key's row is gone; its prefix (an identifier, not a secret) stays in its audit rows.
    assert tables_naming(google_settings, key["prefix"]) == {"audit_log"}
    assert sql(google_settings, "SELECT count(*) FROM executions WHERE id = :i",
               i=queued["execution_id"])[0][0] == 0  # fmt: skip
    # The erasure's own row names the user by id only.
    [row] = sql(google_settings, "SELECT details::text, actor_id FROM audit_log "
                "WHERE action = 'user.deleted' AND target_id = :u", u=user_id)  # fmt: skip
    assert email not in row[0]
    assert str(row[1]) == user_id
    # The credentials are dead; the other user is untouched.
    assert app.get("/agents", headers=headers).status_code == 401
    assert app.get("/agents", headers={"X-API-Key": key["key"]}).status_code == 401
    assert app.get(f"/agents/{kept['agent_id']}", headers=other).status_code == 200


def test_the_last_admin_of_a_team_is_refused_unless_alone(
    client: TestClient, pasar_settings: Settings
) -> None:
    _, alice, _ = signed_up(client)
    alice_personal = client.get("/organisations", headers=alice).json()["current"]
    bob_email, bob, bob_id = signed_up(client)
    team = client.post("/organisations", json={"name": "team"}, headers=alice).json()["id"]
    solo = client.post("/organisations", json={"name": "solo"}, headers=alice).json()["id"]
    answer = client.post("/auth/switch", json={"organisation_id": team}, headers=alice).json()
    in_team = {"Authorization": f"Bearer {answer['access_token']}"}
    join(client, in_team, bob, bob_email)

    refused = client.request("DELETE", "/me", json={"password": TEST_PASSWORD}, headers=alice)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "LAST_ADMIN"
    assert error["details"]["organisations"] == [team]
    assert client.get("/agents", headers=alice).status_code == 200  # nothing was erased

    assert client.put(f"/members/{bob_id}", json={"role": "admin"},
                      headers=in_team).status_code == 200  # fmt: skip
    done = client.post("/graphql", headers=alice, json={
        "query": f'mutation {{ deleteMyAccount(password: "{TEST_PASSWORD}") }}'}).json()  # fmt: skip
    assert done == {"data": {"deleteMyAccount": True}}, done
    bob = {"Authorization": "Bearer " + client.post("/auth/token", json={
        "email": bob_email, "password": TEST_PASSWORD}).json()["access_token"]}  # fmt: skip
    orgs = {o["id"] for o in client.get("/organisations", headers=bob).json()["organisations"]}
    assert team in orgs  # bob's team stays; alice's solo organisation went with her
    assert solo not in orgs
    [[left]] = sql(pasar_settings, "SELECT count(*) FROM organisations WHERE id = ANY(:ids)",
                   ids=[uuid.UUID(solo), uuid.UUID(alice_personal)])  # fmt: skip
    assert left == 0  # her organisations where she was alone went with her


def test_retention_deletes_old_finished_runs_of_organisations_with_a_policy(
    client: TestClient, pasar_settings: Settings
) -> None:
    _, alice, _ = signed_up(client)
    viewer_email, viewer, _ = signed_up(client)
    _, bob, _ = signed_up(client)
    nothing = {"execution_days": None, "knowledge_days": None, "file_days": None}
    assert client.get("/retention", headers=alice).json() == nothing
    runs = {}
    for name, headers in (("alice", alice), ("bob", bob)):
        agent = client.post("/agents", json=AGENT, headers=headers).json()["agent_id"]
        runs[name] = [client.post(f"/agents/{agent}/execute", json={"input": str(i)},
                                  headers=headers).json()["execution_id"] for i in range(3)]  # fmt: skip
    old = datetime.now(UTC) - timedelta(days=40)
    for name in runs:  # two old runs each; one recent
        sql(pasar_settings, "UPDATE executions SET created_at = :t, finished_at = :t "
            "WHERE id = ANY(:ids)",
            t=old, ids=[uuid.UUID(i) for i in runs[name][:2]])  # fmt: skip

    # Only admins set it; bad values are typed errors.
    alice_team, team = in_new_team(client, alice)
    join(client, alice_team, viewer, viewer_email, "viewer")
    switched = client.post("/auth/switch", json={"organisation_id": team},
                           headers=viewer).json()  # fmt: skip
    as_viewer = {"Authorization": f"Bearer {switched['access_token']}"}
    refused = client.put("/retention", json={"execution_days": 1}, headers=as_viewer)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "INSUFFICIENT_ROLE"
    for bad in (0, -1, "x", 10**9):
        answer = client.put("/retention", json={"execution_days": bad}, headers=alice)
        assert answer.status_code == 422, answer.text
    set_ = client.put("/retention", json={"execution_days": 30}, headers=alice)
    assert set_.status_code == 200
    assert set_.json() == {**nothing, "execution_days": 30}
    answer = client.post("/graphql", headers=alice, json={"query": "{ retentionPolicy { executionDays fileDays } }"}).json()  # fmt: skip
    assert answer == {"data": {"retentionPolicy": {"executionDays": 30, "fileDays": None}}}

    async def apply(batch: int) -> dict[uuid.UUID, int]:
        engine = create_async_engine(async_url(pasar_settings.database_url or ""))
        try:
            return await apply_retention(engine, batch=batch)
        finally:
            await engine.dispose()

    deleted = asyncio.run(apply(batch=1))  # bounded batches: one row per transaction
    assert list(deleted.values()) == [2]
    left = {str(r[0]) for r in sql(pasar_settings, "SELECT id FROM executions")}
    assert runs["alice"][2] in left
    assert not set(runs["alice"][:2]) & left
    assert set(runs["bob"]) <= left  # no policy: kept
    [[events]] = sql(pasar_settings, "SELECT count(*) FROM execution_events WHERE "
                     "execution_id = ANY(:ids)", ids=[uuid.UUID(i) for i in runs["alice"][:2]])  # fmt: skip
    assert events == 0
    assert asyncio.run(apply(batch=500)) == {}  # nothing more to do
    rows = client.get("/audit", params={"action": "retention."}, headers=alice).json()["rows"]
    assert [(r["action"], r["details"].get("executions_deleted")) for r in reversed(rows)] == [
        ("retention.changed", None), ("retention.applied", 1), ("retention.applied", 1),
    ]  # fmt: skip
    # GraphQL sets it too; null keeps everything again.
    answer = client.post("/graphql", headers=alice, json={"query": "mutation { setRetentionPolicy(executionDays: null) { executionDays } }"}).json()  # fmt: skip
    assert answer == {"data": {"setRetentionPolicy": {"executionDays": None}}}


def test_retention_counts_from_the_end_of_a_run_and_covers_knowledge_and_files(
    client: TestClient, pasar_settings: Settings
) -> None:
    _, alice, alice_id = signed_up(client)
    _, bob, bob_id = signed_up(client)
    agents, runs = {}, {}
    for name, headers in (("alice", alice), ("bob", bob)):
        agents[name] = client.post("/agents", json=AGENT, headers=headers).json()["agent_id"]
        runs[name] = [client.post(f"/agents/{agents[name]}/execute", json={"input": str(i)},
                                  headers=headers).json()["execution_id"] for i in range(2)]  # fmt: skip
    for name, headers in (("alice", alice), ("bob", bob)):
        for execution_id in runs[name]:
            for _ in range(300):  # the bound only ends a broken test
                status = client.get(f"/executions/{execution_id}", headers=headers).json()
                if status["status"] not in ("queued", "running"):
                    break
                time.sleep(0.05)
            assert status["status"] == "succeeded", status
    long_ago, lately = (
        datetime.now(UTC) - timedelta(days=40),
        datetime.now(UTC) - timedelta(hours=1),
    )
    started_long_ago, ended_long_ago = runs["alice"]
    # A run that lasted (or waited on an approval) 40 days and finished an hour ago is young.
    sql(pasar_settings, "UPDATE executions SET created_at = :c, finished_at = :f WHERE id = :i",
        c=long_ago, f=lately, i=uuid.UUID(started_long_ago))  # fmt: skip
    sql(pasar_settings, "UPDATE executions SET created_at = :c, finished_at = :c WHERE id = :i",
        c=long_ago, i=uuid.UUID(ended_long_ago))  # fmt: skip
    vector = "[" + ",".join(["0.1"] * 384) + "]"
    for agent, user, created in ((agents["alice"], alice_id, long_ago),
                                 (agents["alice"], alice_id, lately),
                                 (agents["bob"], bob_id, long_ago)):  # fmt: skip
        sql(pasar_settings, "INSERT INTO embeddings (id, user_id, agent_id, content, metadata, "
            "embedding, created_at) VALUES (:id, :u, :a, :c, CAST('{}' AS jsonb), "
            "CAST(:v AS vector), :t)", id=uuid.uuid4(), u=uuid.UUID(user), a=uuid.UUID(agent),
            c=f"{user} {created.isoformat()}", v=vector, t=created)  # fmt: skip
    # The runs wrote notes/a.txt for each user; age alice's and bob's, and give alice a new one.
    files = pasar_settings.files_root
    for user in (alice_id, bob_id):
        old_file = files / user / "notes" / "a.txt"
        assert old_file.exists()
        os.utime(old_file, (long_ago.timestamp(), long_ago.timestamp()))
    (files / alice_id / "notes" / "fresh.txt").write_text("new")

    policy = {"execution_days": 30, "knowledge_days": 30, "file_days": 1}
    assert client.put("/retention", json=policy, headers=alice).json() == policy
    # A change names only what it changes; the rest stays.
    assert client.put("/retention", json={"file_days": 2}, headers=alice).json() == {
        **policy,
        "file_days": 2,
    }

    async def apply() -> dict[uuid.UUID, int]:
        engine = create_async_engine(async_url(pasar_settings.database_url or ""))
        try:
            return await apply_retention(engine, files=LocalObjectStore(files))
        finally:
            await engine.dispose()

    assert list(asyncio.run(apply()).values()) == [1]
    left = {str(r[0]) for r in sql(pasar_settings, "SELECT id FROM executions")}
    assert started_long_ago in left
    assert ended_long_ago not in left
    assert set(runs["bob"]) <= left
    kept = sorted(str(r[0]) for r in sql(pasar_settings, "SELECT content FROM embeddings"))
    assert kept == sorted([f"{alice_id} {lately.isoformat()}", f"{bob_id} {long_ago.isoformat()}"])
    assert not (files / alice_id / "notes" / "a.txt").exists()
    assert (files / alice_id / "notes" / "fresh.txt").exists()
    assert (files / bob_id / "notes" / "a.txt").exists()  # no policy of bob's
    rows = client.get("/audit", params={"action": "retention.applied"}, headers=alice).json()
    counted = {key for r in rows["rows"] for key in r["details"] if key.endswith("_deleted")}
    assert counted == {"executions_deleted", "embeddings_deleted", "files_deleted"}


def test_the_server_runs_the_retention_job(pasar_settings: Settings) -> None:
    """The serving process applies the policies in its background loop: an old run goes
    without anyone calling the job."""
    settings = dataclasses.replace(pasar_settings, retention_interval_s=0.2)
    with TestClient(create_app(settings)) as client:
        _, alice, _ = signed_up(client)
        agent = client.post("/agents", json=AGENT, headers=alice).json()["agent_id"]
        run = client.post(f"/agents/{agent}/execute", json={"input": "x"}, headers=alice).json()
        for _ in range(300):  # finished first: its end is what retention counts from
            status = client.get(f"/executions/{run['execution_id']}", headers=alice).json()
            if status["status"] not in ("queued", "running"):
                break
            time.sleep(0.05)
        sql(settings, "UPDATE executions SET created_at = now() - interval '3 days', "
            "finished_at = now() - interval '3 days' WHERE id = :i",
            i=uuid.UUID(run["execution_id"]))  # fmt: skip
        assert (
            client.put("/retention", json={"execution_days": 1}, headers=alice).status_code == 200
        )
        for _ in range(300):  # the job's loop deletes it; the bound only ends a broken test
            if client.get(f"/executions/{run['execution_id']}", headers=alice).status_code == 404:
                break
            time.sleep(0.1)
        assert client.get(f"/executions/{run['execution_id']}", headers=alice).status_code == 404


def test_erasure_removes_the_users_queued_rq_jobs(pasar_settings: Settings) -> None:
    """With the rq executor (a real Redis, no worker to take the job), the erased user's
    queued run leaves no job in Redis and no row."""
    from redis import Redis

    with redis_server() as url:
        settings = pasar_settings.with_overrides(redis_url=url)
        with TestClient(create_app(settings)) as client:
            _, headers, _ = signed_up(client)
            agent = client.post("/agents", json=AGENT, headers=headers).json()["agent_id"]
            queued = client.post(f"/agents/{agent}/execute", headers=headers,
                                 json={"input": "x", "parameters": {"wait": False}}).json()  # fmt: skip
            assert queued["status"] == "queued", queued
            job = f"rq:job:{queued['execution_id']}"
            redis = Redis.from_url(url)
            assert redis.exists(job)
            erased = client.request("DELETE", "/me", json={"password": TEST_PASSWORD},
                                    headers=headers)  # fmt: skip
            assert erased.status_code == 204, erased.text
            assert not redis.exists(job)
            assert redis.lpos("rq:queue:pasar-executions", queued["execution_id"]) is None
            [[rows]] = sql(settings, "SELECT count(*) FROM executions WHERE id = :i",
                           i=uuid.UUID(queued["execution_id"]))  # fmt: skip
            assert rows == 0


def test_erasure_and_export_keep_no_one_elses_address_nor_the_erased_email(
    client: TestClient, pasar_settings: Settings
) -> None:
    alice_email, alice, alice_id = signed_up(client)
    bob_email, bob, _ = signed_up(client)
    personal = client.get("/organisations", headers=alice).json()["current"]
    # Alice's personal organisation has bob too (possible before invitations into personal
    # organisations were refused: such organisations still exist).
    sql(pasar_settings, "INSERT INTO memberships (organisation_id, user_id, role) "
        "SELECT :o, id, 'admin' FROM users WHERE email = :e",
        o=uuid.UUID(personal), e=bob_email)  # fmt: skip
    switched = client.post("/auth/switch", json={"organisation_id": personal}, headers=bob)
    bob_there = {"Authorization": f"Bearer {switched.json()['access_token']}"}
    demoted = client.put(f"/members/{alice_id}", json={"role": "member"}, headers=bob_there)
    assert demoted.status_code == 200, demoted.text  # a row about alice, written by bob
    token = client.post("/auth/token", json={"email": alice_email, "password": TEST_PASSWORD})
    alice = {"Authorization": f"Bearer {token.json()['access_token']}"}

    # Alice's export: rows about her that another admin wrote carry no address of theirs.
    rows = client.get("/me/export", headers=alice).json()["audit_log"]
    others = [r for r in rows if r["actor_id"] not in (alice_id, None)]
    assert [r["action"] for r in others] == ["member.role_changed"]
    assert all(r["source"] is None for r in others)
    assert any(r["source"] for r in rows if r["actor_id"] == alice_id)  # her own are kept

    erased = client.request("DELETE", "/me", json={"password": TEST_PASSWORD}, headers=alice)
    assert erased.status_code == 204, erased.text
    [[source, details]] = sql(pasar_settings, "SELECT source, details FROM audit_log WHERE "
                              "action = 'user.deleted' AND target_id = :u", u=alice_id)  # fmt: skip
    assert source is None
    assert alice_email not in str(details)
    # Her personal organisation stays (bob is in it) but no longer bears her email.
    [[name]] = sql(pasar_settings, "SELECT name FROM organisations WHERE id = :o",
                   o=uuid.UUID(personal))  # fmt: skip
    assert alice_email not in name
    assert alice_email.split("@")[0] not in name
    assert "organisations" not in tables_naming(pasar_settings, alice_email)
