"""Provider scopes in the audit log: consent and disconnection rows, one row per tool call with
the scopes it used, and the scope-usage export (JSON and CSV) built from them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from pasar_core.settings import Settings
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.consent import Browser
from tests.governance.admins import make_operator

GMAIL_READ = "https://www.googleapis.com/auth/gmail.readonly"


@pytest.fixture
def app(google_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(google_settings)) as client:
        yield client


def test_tool_calls_record_their_scopes_and_the_export_counts_them(
    app: TestClient, make_user, google_settings: Settings
) -> None:
    operator = make_operator(app, google_settings)
    headers = make_user()
    script = [{"tool_calls": [{"name": "gmail_read", "args": {"query": "is:unread"}}]},
              {"tool_calls": [{"name": "gmail_read", "args": {"query": "budget"}}]},
              {"content": "read"}]  # fmt: skip
    config = {"model": "scripted", "model_options": {"script": script}}
    agent = app.post("/agents", json={"name": "mail", "tools": ["gmail:read"], "config": config},
                     headers=headers).json()  # fmt: skip
    assert Browser(app).connect(agent["auth_url"]).status_code == 200
    run = app.post(f"/agents/{agent['agent_id']}/execute", json={"input": "go"},
                   headers=headers).json()  # fmt: skip
    assert run["status"] == "succeeded", run

    connected = app.get("/audit", params={"action": "oauth.connected"}, headers=operator).json()
    [grant] = connected["rows"]
    assert grant["provider"] == "google"
    assert GMAIL_READ in grant["scopes"]
    assert grant["source"] == "peer:testclient"  # the browser that consented
    calls = app.get("/audit", params={"action": "execution.tool_call"}, headers=operator).json()
    assert [(r["provider"], r["scopes"], r["details"]["tool"]) for r in calls["rows"]] == [
        ("google", [GMAIL_READ], "gmail:read")
    ] * 2
    assert {r["target_id"] for r in calls["rows"]} == {run["execution_id"]}

    usage = app.get("/audit/scope-usage", params={"provider": "google"}, headers=operator).json()
    [used] = usage["scopes"]
    assert (used["scope"], used["calls"], used["agents"], used["tools"]) == (
        GMAIL_READ, 2, [agent["agent_id"]], ["gmail:read"]
    )  # fmt: skip
    assert used["first_used"] <= used["last_used"]
    exported = app.get("/audit/scope-usage", params={"format": "csv"}, headers=operator)
    assert exported.headers["content-type"].startswith("text/csv")
    [row] = list(csv.DictReader(io.StringIO(exported.text)))
    assert (row["provider"], row["scope"], row["calls"]) == ("google", GMAIL_READ, "2")
    assert app.get("/audit/scope-usage", params={"provider": "other"}, headers=operator).json() == {
        "scopes": []
    }

    assert app.delete("/connections/google", headers=headers).status_code == 200
    gone = app.get("/audit", params={"action": "oauth.disconnected"}, headers=operator).json()
    assert [(r["provider"], r["target_id"]) for r in gone["rows"]] == [("google", "google")]


def test_a_failed_refresh_leaves_a_row(
    app: TestClient, make_user, google_settings: Settings, google_emulator
) -> None:
    from pasar_google_workspace.testing import CLIENT_ID
    from sqlalchemy import text

    operator = make_operator(app, google_settings)
    headers = make_user()
    script = [{"tool_calls": [{"name": "gmail_read", "args": {"query": "x"}}]}, {"content": "ok"}]
    config = {"model": "scripted", "model_options": {"script": script}}
    agent = app.post("/agents", json={"name": "mail", "tools": ["gmail:read"], "config": config},
                     headers=headers).json()  # fmt: skip
    assert Browser(app).connect(agent["auth_url"]).status_code == 200
    google_emulator.state.revoke_grant(CLIENT_ID)  # the user revoked access at Google

    async def expire() -> None:
        async with app.app_state["services"].sessionmaker.begin() as session:
            await session.execute(
                text("UPDATE auth_tokens SET expires_at = now() - interval '1 s'")
            )

    assert app.portal is not None
    app.portal.call(expire)
    app.post(f"/agents/{agent['agent_id']}/execute", json={"input": "go"}, headers=headers)
    failed = app.get("/audit", params={"action": "oauth.refresh_failed"}, headers=operator).json()
    [row] = failed["rows"]
    assert (row["outcome"], row["provider"], row["actor_via"]) == ("failed", "google", "system")
    assert "invalid_grant" in row["details"]["reason"]
