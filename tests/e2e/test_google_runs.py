"""Runs with Google tools: pause for consent, resume after the callback, use the stored tokens
against the emulator, and never call what the agent did not declare."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from pasar_google_workspace.client import HTTP_CLIENT_EXTRA
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.consent import Browser


@pytest.fixture
def app(google_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(google_settings)) as client:
        yield client


def login(app: TestClient) -> dict[str, str]:
    credentials = {"email": "runs@example.com", "password": TEST_PASSWORD}
    app.post("/auth/signup", json=credentials)
    return {
        "Authorization": "Bearer "
        + app.post("/auth/token", json=credentials).json()["access_token"]
    }


def scripted(*replies: dict[str, Any]) -> dict[str, Any]:
    return {"model": "scripted", "model_options": {"script": list(replies)}}


def wait_status(
    app: TestClient, headers: dict[str, str], execution_id: str, status: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        run = app.get(f"/executions/{execution_id}", headers=headers).json()
        if run["status"] == status or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def consent_and_callback(app: TestClient, auth_url: str) -> None:
    assert Browser(app).connect(auth_url).status_code == 200


def test_run_pauses_for_consent_then_resumes_with_the_tokens(app: TestClient) -> None:
    # The Google plugin's startup hook opened one client for the process: the run uses it.
    shared = app.app_state["services"].extras[HTTP_CLIENT_EXTRA]
    requested: list[str] = []

    async def record(request: httpx.Request) -> None:
        requested.append(request.url.path)

    shared.event_hooks["request"].append(record)
    headers = login(app)
    config = scripted(
        {"tool_calls": [{"name": "gmail_read", "args": {"query": "is:unread", "max_results": 3}}]},
        {"content": "read your mail"},
    )
    agent = app.post("/agents", json={"name": "mail", "tools": ["gmail:read"], "config": config},
                     headers=headers).json()  # fmt: skip
    assert agent["auth_required"] is True
    run = app.post(
        f"/agents/{agent['agent_id']}/execute", json={"input": "check mail"}, headers=headers
    )
    assert run.status_code == 202
    paused = run.json()
    assert paused["status"] == "awaiting_authorization"
    assert paused["steps"] == []  # paused before anything happened
    assert paused["auth_url"].startswith("http://testserver/auth/google/start?state=")
    consent_and_callback(app, paused["auth_url"])
    finished = wait_status(app, headers, paused["execution_id"], "succeeded")
    assert finished["status"] == "succeeded", finished
    result = finished["steps"][2]
    assert result["type"] == "tool_result"
    assert "error" not in result, result
    # The emulator's three seeded messages are unread: the tool read them, newest first.
    assert [(m["id"], m["subject"]) for m in result["result"]["messages"]] == [
        ("m3", "Re: Q1 budget"), ("m2", "Lunch on Friday?"), ("m1", "Q1 budget"),
    ]  # fmt: skip
    assert "/gmail/v1/users/me/messages" in requested


def test_agent_is_refused_tools_it_did_not_declare(app: TestClient) -> None:
    headers = login(app)
    # The user grants Gmail broadly through one agent...
    broad = app.post("/agents", json={"name": "sender", "tools": ["gmail:read", "gmail:send"],
                                      "config": scripted({"content": "x"})}, headers=headers).json()  # fmt: skip
    consent_and_callback(app, broad["auth_url"])
    # ...and another agent, declaring only gmail:read, asks its model to send.
    config = scripted(
        {
            "tool_calls": [
                {
                    "name": "gmail_send",
                    "args": {"to": ["a@example.com"], "subject": "s", "body": "b"},
                }
            ]
        },
        {"content": "done"},
    )
    reader = app.post("/agents", json={"name": "reader", "tools": ["gmail:read"], "config": config},
                      headers=headers).json()  # fmt: skip
    run = app.post(
        f"/agents/{reader['agent_id']}/execute", json={"input": "send it"}, headers=headers
    ).json()
    assert run["status"] == "succeeded", run
    # The call is recorded as refused (the agent does not declare gmail:send); nothing ran.
    types = [step["type"] for step in run["steps"]]
    assert types == ["model_call", "tool_call", "tool_result", "model_call"]
    call, result = run["steps"][1], run["steps"][2]
    assert (call["tool"], call["name"], call["refused"]) == (None, "gmail_send", True)
    assert result["error"].startswith("TOOL_NOT_DECLARED")
    assert "result" not in result


def test_a_run_refreshes_an_expiring_token(app: TestClient, google_emulator) -> None:
    from pasar_core.oauth.tokens import open_tokens
    from pasar_core.services import Services
    from pasar_core.storage.models import AuthToken
    from sqlalchemy import select, update

    headers = login(app)
    config = scripted(
        {"tool_calls": [{"name": "gmail_read", "args": {"query": "is:unread"}}]}, {"content": "ok"}
    )
    agent = app.post("/agents", json={"name": "m", "tools": ["gmail:read"], "config": config},
                     headers=headers).json()  # fmt: skip
    consent_and_callback(app, agent["auth_url"])
    services: Services = app.app_state["services"]

    async def grant() -> AuthToken:
        async with services.sessionmaker() as session:
            return (await session.scalars(select(AuthToken))).one()

    async def expire() -> None:
        async with services.sessionmaker.begin() as session:
            await session.execute(
                update(AuthToken).values(expires_at=datetime.now(UTC) + timedelta(seconds=5))
            )

    assert app.portal is not None
    before = app.portal.call(grant)
    google_emulator.state.expire_access_tokens()  # Google would now answer 401 to the old token
    app.portal.call(expire)
    run = app.post(
        f"/agents/{agent['agent_id']}/execute", json={"input": "mail?"}, headers=headers
    ).json()
    assert run["status"] == "succeeded", run
    assert "error" not in run["steps"][2], run["steps"][2]
    assert [m["id"] for m in run["steps"][2]["result"]["messages"]] == ["m3", "m2", "m1"]
    assert google_emulator.state.hits["token:refresh_token"] == 1
    after = app.portal.call(grant)
    keyring = services.keyring
    old, new = open_tokens(keyring, before), open_tokens(keyring, after)
    assert new.access_token != old.access_token
    assert new.access_token in google_emulator.state.access_tokens  # what Google issued
    assert new.refresh_token == old.refresh_token  # never lost on refresh
    assert after.expires_at
    assert before.expires_at
    assert after.expires_at > before.expires_at
