"""Sign-up, log-in, API keys and authentication through the REST API."""

from __future__ import annotations

import time
import uuid

import jwt
from pasar_core.testing import TEST_PASSWORD as PASSWORD
from pasar_core.testing import TEST_SECRET_KEY
from starlette.testclient import TestClient


def test_sign_up_log_in_and_use_the_token(client: TestClient) -> None:
    created = client.post("/auth/signup", json={"email": "Ana@Example.com", "password": PASSWORD})
    assert created.status_code == 201
    assert created.json()["email"] == "ana@example.com"
    assert "password" not in created.text
    token = client.post("/auth/token", json={"email": "ana@example.com", "password": PASSWORD})
    assert token.status_code == 200
    body = token.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] > 0
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/agents", headers=headers).json() == {"agents": []}


def test_duplicate_email_is_a_conflict_regardless_of_case(client: TestClient) -> None:
    assert (
        client.post(
            "/auth/signup", json={"email": "bo@example.com", "password": PASSWORD}
        ).status_code
        == 201
    )
    again = client.post("/auth/signup", json={"email": "BO@example.com", "password": PASSWORD})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "CONFLICT"


def test_wrong_password_and_unknown_email_look_the_same(client: TestClient) -> None:
    client.post("/auth/signup", json={"email": "cy@example.com", "password": PASSWORD})
    wrong = client.post(
        "/auth/token", json={"email": "cy@example.com", "password": "not the password"}
    )
    unknown = client.post("/auth/token", json={"email": "nobody@example.com", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["www-authenticate"] == "Bearer"


def test_api_key_is_shown_once_and_works_in_both_headers(client: TestClient, make_user) -> None:
    headers = make_user()
    created = client.post("/api-keys", json={"name": "ci"}, headers=headers)
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith(created.json()["prefix"])
    for key_headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        assert client.get("/agents", headers=key_headers).status_code == 200
    assert client.get("/agents", headers={"X-API-Key": key + "x"}).status_code == 401


def test_expired_forged_and_missing_tokens_are_401(client: TestClient, make_user) -> None:
    make_user()
    now = int(time.time())
    claims = {
        "iss": "pasar",
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "org": str(uuid.uuid4()),
        "typ": "access",
        "iat": now - 99,
    }
    expired = jwt.encode(claims | {"exp": now - 1}, TEST_SECRET_KEY, algorithm="HS256")
    forged = jwt.encode(
        claims | {"exp": now + 99}, "another-secret-key-of-enough-length!!", algorithm="HS256"
    )
    unknown_user = jwt.encode(claims | {"exp": now + 99}, TEST_SECRET_KEY, algorithm="HS256")
    sessionless = jwt.encode(
        {k: v for k, v in claims.items() if k != "sid"} | {"exp": now + 99},
        TEST_SECRET_KEY,
        algorithm="HS256",
    )
    cases = {
        "expired": {"Authorization": f"Bearer {expired}"},
        "invalid": {"Authorization": f"Bearer {forged}"},
        "no longer exists": {"Authorization": f"Bearer {unknown_user}"},
        "the access token is invalid": {"Authorization": f"Bearer {sessionless}"},
        "Authorization header": {"Authorization": "Token abc"},
        "authentication required": {},
    }
    for fragment, headers in cases.items():
        response = client.get("/agents", headers=headers)
        assert response.status_code == 401, fragment
        error = response.json()["error"]
        assert error["code"] == "UNAUTHENTICATED"
        assert fragment in error["message"]


def test_api_key_needs_authentication(client: TestClient) -> None:
    response = client.post("/api-keys", json={"name": "x"})
    assert response.status_code == 401


def login_pair(client: TestClient, email: str) -> dict[str, object]:
    credentials = {"email": email, "password": PASSWORD}
    client.post("/auth/signup", json=credentials)
    body: dict[str, object] = client.post("/auth/token", json=credentials).json()
    return body


def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_family(client: TestClient) -> None:
    first = login_pair(client, "rotate@example.com")
    assert str(first["refresh_token"]).startswith("psrt_")
    assert first["refresh_expires_in"] == 30 * 86_400
    second = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert (
        client.get(
            "/agents", headers={"Authorization": f"Bearer {pair['access_token']}"}
        ).status_code
        == 200
    )
    # The first token again: someone replays a stolen token. Every token of the family dies.
    replay = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert "already used" in replay.json()["error"]["message"]
    after = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert after.status_code == 401


def test_logout_revokes_the_refresh_token(client: TestClient) -> None:
    pair = login_pair(client, "logout@example.com")
    assert (
        client.post("/auth/logout", json={"refresh_token": pair["refresh_token"]}).status_code
        == 204
    )
    refused = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refused.status_code == 401
    assert client.post("/auth/logout", json={"refresh_token": "psrt_unknown"}).status_code == 204


def test_bad_refresh_tokens_are_401_or_422(client: TestClient) -> None:
    for token, status in (
        ("not-a-token", 401),
        ("psrt_" + "x" * 40, 401),
        ("", 422),
        ("p" * 500, 422),
    ):
        response = client.post("/auth/refresh", json={"refresh_token": token})
        assert response.status_code == status, token
    assert client.post("/auth/refresh", json={"token": "x"}).status_code == 422


def test_expired_refresh_token_is_refused(pasar_settings) -> None:
    from pasar.app import create_app

    with TestClient(create_app(pasar_settings.with_overrides(refresh_token_ttl_s=-1))) as short:
        pair = login_pair(short, "expired-refresh@example.com")
        response = short.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert response.status_code == 401
        assert "expired" in response.json()["error"]["message"]


def test_repeated_failed_logins_are_throttled(client: TestClient) -> None:
    credentials = {"email": "guess@example.com", "password": PASSWORD}
    client.post("/auth/signup", json=credentials)
    wrong = {"email": "guess@example.com", "password": "not the password"}
    for _ in range(10):
        assert client.post("/auth/token", json=wrong).status_code == 401
    limited = client.post("/auth/token", json=credentials)  # even the right password waits now
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "RATE_LIMITED"
    assert int(limited.headers["retry-after"]) > 0
