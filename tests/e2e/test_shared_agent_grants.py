"""A user's OAuth grant is never used by another member's run unless that user attached it to
the shared agent explicitly: against the local Google emulator, with real consent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.consent import Browser
from tests.support.teams import in_new_team, join

READ_MAIL = {
    "model": "scripted",
    "model_options": {"script": [
        {"tool_calls": [{"name": "gmail_read", "args": {"query": "is:unread", "max_results": 3}}]},
        {"content": "read the mail"},
    ]},
}  # fmt: skip


@pytest.fixture
def app(google_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(google_settings)) as client:
        yield client


def log_in(app: TestClient, email: str) -> dict[str, str]:
    credentials = {"email": email, "password": TEST_PASSWORD}
    app.post("/auth/signup", json=credentials)
    token = app.post("/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def finished(app: TestClient, headers: dict[str, str], execution_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        run: dict[str, Any] = app.get(f"/executions/{execution_id}", headers=headers).json()
        if run["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def connected_agent(app: TestClient, headers: dict[str, str]) -> str:
    """An agent reading Gmail, and its owner's grant (consented through the browser flow)."""
    agent = app.post("/agents", json={"name": "mail", "tools": ["gmail:read"],
                                      "config": READ_MAIL}, headers=headers).json()  # fmt: skip
    assert Browser(app).connect(agent["auth_url"]).status_code == 200
    return str(agent["agent_id"])


def run_of(app: TestClient, headers: dict[str, str], agent_id: str) -> dict[str, Any]:
    started = app.post(f"/agents/{agent_id}/execute", json={"input": "mail?"}, headers=headers)
    assert started.status_code in (200, 202), started.text
    return finished(app, headers, started.json()["execution_id"])


def test_a_members_run_uses_only_a_grant_attached_to_the_shared_agent(app: TestClient) -> None:
    owner, _ = in_new_team(app, log_in(app, "owner@example.com"))
    agent_id = connected_agent(app, owner)
    assert run_of(app, owner, agent_id)["status"] == "succeeded"  # the owner's own agent

    organisation = app.get("/organisations", headers=owner).json()["current"]
    member_own = log_in(app, "member@example.com")
    join(app, owner, member_own, "member@example.com")
    switched = app.post("/auth/switch", json={"organisation_id": organisation},
                        headers=member_own)  # fmt: skip
    member = {"Authorization": f"Bearer {switched.json()['access_token']}"}
    assert app.put(f"/agents/{agent_id}/sharing", json={"role": "member"},
                   headers=owner).status_code == 200  # fmt: skip

    # Shared, but nobody attached a grant: the owner's grant is not the member's to use.
    refused = run_of(app, member, agent_id)
    assert refused["status"] == "failed", refused
    assert "CONNECTION_NOT_ATTACHED" in refused["error"]
    assert refused["steps"] == []  # nothing reached Gmail

    # The member's own grant (for their own agent) is not used implicitly either.
    connected_agent(app, member_own)
    assert run_of(app, member, agent_id)["status"] == "failed"

    # The owner attaches theirs explicitly: the member's run reads the owner's mailbox.
    attached = app.put(f"/agents/{agent_id}/connections/google", headers=owner)
    assert attached.status_code == 200, attached.text
    owner_id = jwt.decode(owner["Authorization"][7:], options={"verify_signature": False})["sub"]
    assert attached.json()["user_id"] == owner_id
    ran = run_of(app, member, agent_id)
    assert ran["status"] == "succeeded", ran
    assert [m["id"] for m in ran["steps"][2]["result"]["messages"]] == ["m3", "m2", "m1"]

    # The member may not detach the owner's grant; the owner may, and runs fail again.
    assert app.delete(f"/agents/{agent_id}/connections/google", headers=member).status_code == 403
    assert app.delete(f"/agents/{agent_id}/connections/google", headers=owner).status_code == 204
    assert run_of(app, member, agent_id)["status"] == "failed"


def joined(app: TestClient, admin: dict[str, str], email: str) -> dict[str, str]:
    """`email` signed up, joined the admin's organisation as a member, acting in it."""
    own = log_in(app, email)
    organisation = app.get("/organisations", headers=admin).json()["current"]
    join(app, admin, own, email)
    switched = app.post("/auth/switch", json={"organisation_id": organisation}, headers=own)
    assert switched.status_code == 200, switched.text
    return {"Authorization": f"Bearer {switched.json()['access_token']}"}


def user_id_of(headers: dict[str, str]) -> str:
    claims = jwt.decode(headers["Authorization"][7:], options={"verify_signature": False})
    return str(claims["sub"])


def test_an_attachment_ends_with_its_users_membership(app: TestClient) -> None:
    owner, _ = in_new_team(app, log_in(app, "owner@example.com"))
    agent_id = connected_agent(app, owner)
    lender = joined(app, owner, "lender@example.com")
    runner = joined(app, owner, "runner@example.com")
    assert app.put(f"/agents/{agent_id}/sharing", json={"role": "member"},
                   headers=owner).status_code == 200  # fmt: skip
    connected_agent(app, log_in(app, "lender@example.com"))  # the lender's own grant
    attached = app.put(f"/agents/{agent_id}/connections/google", headers=lender)
    assert attached.status_code == 200, attached.text
    assert run_of(app, runner, agent_id)["status"] == "succeeded"  # the lender's mailbox

    # The lender leaves the organisation: their grant no longer serves anybody's runs in it.
    removed = app.delete(f"/members/{user_id_of(lender)}", headers=owner)
    assert removed.status_code == 204, removed.text
    refused = run_of(app, runner, agent_id)
    assert refused["status"] == "failed", refused
    assert "CONNECTION_NOT_ATTACHED" in refused["error"]


def test_who_attached_a_grant_detaches_it_after_the_agent_is_private_again(
    app: TestClient,
) -> None:
    owner, _ = in_new_team(app, log_in(app, "owner@example.com"))
    agent_id = connected_agent(app, owner)
    lender = joined(app, owner, "lender@example.com")
    assert app.put(f"/agents/{agent_id}/sharing", json={"role": "member"},
                   headers=owner).status_code == 200  # fmt: skip
    connected_agent(app, log_in(app, "lender@example.com"))
    assert app.put(f"/agents/{agent_id}/connections/google", headers=lender).status_code == 200
    assert app.put(f"/agents/{agent_id}/sharing", json={"role": None},
                   headers=owner).status_code == 200  # fmt: skip
    # ... and the lender is only a viewer now (the demotion ended their session there).
    demoted = app.put(f"/members/{user_id_of(lender)}", json={"role": "viewer"}, headers=owner)
    assert demoted.status_code == 200, demoted.text
    organisation = app.get("/organisations", headers=owner).json()["current"]
    switched = app.post("/auth/switch", json={"organisation_id": organisation},
                        headers=log_in(app, "lender@example.com"))  # fmt: skip
    lender = {"Authorization": f"Bearer {switched.json()['access_token']}"}

    # The agent stays hidden from the lender, but their own attachment is theirs to end.
    assert app.get(f"/agents/{agent_id}", headers=lender).status_code == 404
    detached = app.delete(f"/agents/{agent_id}/connections/google", headers=lender)
    assert detached.status_code == 204, detached.text
    again = app.delete(f"/agents/{agent_id}/connections/google", headers=lender)
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "NOT_FOUND"
    # Nobody else's attachment (nor a missing one) is detachable through a private agent.
    other = joined(app, owner, "other@example.com")
    assert app.delete(f"/agents/{agent_id}/connections/google", headers=other).status_code == 404
