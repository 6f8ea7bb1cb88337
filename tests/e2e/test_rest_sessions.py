"""Ending sessions over REST: log-out, refresh-token reuse and password change revoke the access
tokens too, in this process and in any other serving the same database, with no query per
request."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from pasar_core.services import Services
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.support.statements import Statements
from tests.support.teams import in_new_team, join

NEW_PASSWORD = "a different long passphrase"


def services_of(client: TestClient) -> Services:
    found: Services = client.app_state["services"]
    return found


def session_id(access_token: str) -> uuid.UUID:
    return uuid.UUID(jwt.decode(access_token, options={"verify_signature": False})["sid"])


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def log_in(client: TestClient, email: str, password: str = TEST_PASSWORD) -> dict[str, Any]:
    response = client.post("/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    pair: dict[str, Any] = response.json()
    return pair


def sign_up(client: TestClient) -> str:
    email = f"s-{uuid.uuid4().hex[:10]}@example.com"
    credentials = {"email": email, "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    return email


def wait_until_known_revoked(client: TestClient, sid: uuid.UUID) -> None:
    """Until the NOTIFY has reached this app's listener (delivery is asynchronous)."""
    revoked = services_of(client).revoked_sessions
    deadline = time.monotonic() + 30
    while not revoked.is_revoked(sid):
        assert time.monotonic() < deadline, "the revocation never reached this process"
        time.sleep(0.01)


@pytest.fixture
def two_apps(pasar_settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    """Two server instances on one database: each its own services, pool and listener."""
    with (
        TestClient(create_app(pasar_settings), raise_server_exceptions=False) as first,
        TestClient(create_app(pasar_settings), raise_server_exceptions=False) as second,
    ):
        assert services_of(first).revoked_sessions is not services_of(second).revoked_sessions
        yield first, second


def test_logout_refuses_the_access_token_in_this_process(client: TestClient) -> None:
    email = sign_up(client)
    pair, other = log_in(client, email), log_in(client, email)
    assert client.get("/agents", headers=bearer(pair)).status_code == 200
    assert (
        client.post("/auth/logout", json={"refresh_token": pair["refresh_token"]}).status_code
        == 204
    )
    refused = client.get("/agents", headers=bearer(pair))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "UNAUTHENTICATED"
    assert "session has ended" in refused.json()["error"]["message"]
    # Only that session ended: the user's other session goes on.
    assert client.get("/agents", headers=bearer(other)).status_code == 200


def test_logout_in_one_process_refuses_the_token_in_another_without_a_query(
    two_apps: tuple[TestClient, TestClient],
) -> None:
    first, second = two_apps
    email = sign_up(first)
    pair = log_in(first, email)
    statements = Statements(services_of(second))
    try:
        assert second.get("/agents", headers=bearer(pair)).status_code == 200
        # Accepting a token never reads the denylist: the check is in memory.
        assert statements.seen
        assert not any("revoked_sessions" in sql for sql in statements.seen)

        assert (
            first.post("/auth/logout", json={"refresh_token": pair["refresh_token"]}).status_code
            == 204
        )
        wait_until_known_revoked(second, session_id(pair["access_token"]))
        statements.seen.clear()
        refused = second.get("/agents", headers=bearer(pair))
        assert refused.status_code == 401
        assert "session has ended" in refused.json()["error"]["message"]
        assert statements.seen == []  # refused from memory: not one statement
    finally:
        statements.close()


def test_password_change_revokes_every_session_in_every_process(
    two_apps: tuple[TestClient, TestClient],
) -> None:
    first, second = two_apps
    email = sign_up(first)
    sessions = [log_in(first, email), log_in(second, email)]
    key = first.post("/api-keys", json={"name": "ci"}, headers=bearer(sessions[0])).json()["key"]
    for app in two_apps:
        for pair in sessions:
            assert app.get("/agents", headers=bearer(pair)).status_code == 200

    changed = second.post(
        "/auth/password",
        json={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(sessions[1]),
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["sessions_revoked"], body["api_keys_revoked"], body["api_keys_active"]) == (
        2,
        0,
        1,
    )

    for pair in sessions:
        wait_until_known_revoked(first, session_id(pair["access_token"]))
        for app in two_apps:
            assert app.get("/agents", headers=bearer(pair)).status_code == 401
            assert (
                app.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code
                == 401
            )
    # The caller goes on with the new session; the API key is kept (documented choice).
    for app in two_apps:
        assert app.get("/agents", headers=bearer(body)).status_code == 200
        assert app.get("/agents", headers={"X-API-Key": key}).status_code == 200
    refreshed = first.post("/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200
    # The old password no longer logs in; the new one does.
    old = first.post("/auth/token", json={"email": email, "password": TEST_PASSWORD})
    assert old.status_code == 401
    log_in(first, email, NEW_PASSWORD)


def test_password_change_can_revoke_the_api_keys_too(client: TestClient) -> None:
    email = sign_up(client)
    pair = log_in(client, email)
    keys = [
        client.post("/api-keys", json={"name": n}, headers=bearer(pair)).json()["key"]
        for n in ("a", "b")
    ]
    changed = client.post(
        "/auth/password",
        json={
            "current_password": TEST_PASSWORD,
            "new_password": NEW_PASSWORD,
            "revoke_api_keys": True,
        },
        headers={"X-API-Key": keys[0]},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["api_keys_revoked"], changed.json()["api_keys_active"]) == (2, 0)
    for key in keys:
        assert client.get("/agents", headers={"X-API-Key": key}).status_code == 401
    assert client.get("/agents", headers=bearer(pair)).status_code == 401
    assert client.get("/agents", headers=bearer(changed.json())).status_code == 200


def test_bad_password_changes_are_refused_and_change_nothing(client: TestClient) -> None:
    email = sign_up(client)
    pair = log_in(client, email)
    cases: list[tuple[dict[str, Any], dict[str, str], int, str]] = [
        ({"current_password": "not the password", "new_password": NEW_PASSWORD}, bearer(pair), 403, "WRONG_PASSWORD"),
        ({"current_password": TEST_PASSWORD, "new_password": TEST_PASSWORD}, bearer(pair), 422, "VALIDATION_FAILED"),
        ({"current_password": TEST_PASSWORD, "new_password": "short"}, bearer(pair), 422, "VALIDATION_FAILED"),
        ({"current_password": TEST_PASSWORD}, bearer(pair), 422, "VALIDATION_FAILED"),
        ({"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD, "role": "admin"}, bearer(pair), 422, "VALIDATION_FAILED"),
        ({"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD}, {}, 401, "UNAUTHENTICATED"),
    ]  # fmt: skip
    for body, headers, status, code in cases:
        response = client.post("/auth/password", json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == code
        assert TEST_PASSWORD not in response.text
    assert client.get("/agents", headers=bearer(pair)).status_code == 200
    log_in(client, email)


def test_guessing_the_current_password_is_throttled_like_a_log_in(client: TestClient) -> None:
    """A stolen access token must not become an unthrottled password oracle."""
    email = sign_up(client)
    pair = log_in(client, email)
    wrong = {"current_password": "not the password", "new_password": NEW_PASSWORD}
    statuses = [
        client.post("/auth/password", json=wrong, headers=bearer(pair)).status_code
        for _ in range(11)
    ]
    assert statuses == [403] * 10 + [429]


def test_a_reused_refresh_token_also_kills_its_access_tokens(client: TestClient) -> None:
    email = sign_up(client)
    first = log_in(client, email)
    second = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    assert client.get("/agents", headers=bearer(second)).status_code == 200
    replay = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    for pair in (first, second):  # the thief's and the owner's access tokens alike
        assert client.get("/agents", headers=bearer(pair)).status_code == 401


def call(client: TestClient, function: Any, *args: Any) -> Any:
    """Run a pasar_core service function on the app's own event loop."""
    assert client.portal is not None
    return client.portal.call(function, services_of(client), *args)


def test_a_demotion_ends_the_users_sessions_in_the_organisation_in_every_process(
    two_apps: tuple[TestClient, TestClient],
) -> None:
    """The role in an organisation travels in the access token (no query per request), so an
    admin demoting a member ends the member's sessions acting in it: the old token is refused
    in every process, a new session in the organisation carries the new role."""
    first, second = two_apps
    personal_pair = log_in(first, sign_up(first))
    _, team = in_new_team(first, bearer(personal_pair))
    admin_pair = first.post("/auth/switch", json={"organisation_id": team},
                            headers=bearer(personal_pair)).json()  # fmt: skip
    email = sign_up(first)
    added = join(first, bearer(admin_pair), bearer(log_in(first, email)), email)
    organisation = jwt.decode(admin_pair["access_token"], options={"verify_signature": False})
    switch = {"organisation_id": organisation["org"]}
    pair = first.post("/auth/switch", json=switch, headers=bearer(log_in(first, email))).json()
    assert second.get("/agents", headers=bearer(pair)).status_code == 200
    changed = first.put(
        f"/members/{added['user_id']}", json={"role": "viewer"}, headers=bearer(admin_pair)
    )
    assert changed.status_code == 200, changed.text
    wait_until_known_revoked(second, session_id(pair["access_token"]))
    assert second.get("/agents", headers=bearer(pair)).status_code == 401
    fresh = second.post("/auth/switch", json=switch, headers=bearer(log_in(second, email))).json()
    assert jwt.decode(fresh["access_token"], options={"verify_signature": False})["role"] == (
        "viewer"
    )
    me = second.post("/graphql", json={"query": "{ me { role } }"}, headers=bearer(fresh))
    assert me.json() == {"data": {"me": {"role": "viewer"}}}


def test_a_deleted_users_tokens_are_refused_even_by_a_process_started_later(
    pasar_settings: Settings, two_apps: tuple[TestClient, TestClient]
) -> None:
    from pasar_core.accounts.service import delete_user

    first, second = two_apps
    email = sign_up(first)
    pair = log_in(first, email)
    agent = second.post("/agents", json={"name": "a", "tools": []}, headers=bearer(pair))
    assert agent.status_code == 201
    call(first, delete_user, email)
    wait_until_known_revoked(second, session_id(pair["access_token"]))
    for client in (first, second):
        refused = client.post("/agents", json={"name": "b", "tools": []}, headers=bearer(pair))
        assert refused.status_code == 401  # not a 500 from a missing owner row
    with TestClient(create_app(pasar_settings), raise_server_exceptions=False) as later:
        assert later.get("/agents", headers=bearer(pair)).status_code == 401
    refreshed = first.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401
