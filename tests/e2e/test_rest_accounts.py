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
    claims = {"iss": "pasar", "sub": str(uuid.uuid4()), "typ": "access", "iat": now - 99}
    expired = jwt.encode(claims | {"exp": now - 1}, TEST_SECRET_KEY, algorithm="HS256")
    forged = jwt.encode(
        claims | {"exp": now + 99}, "another-secret-key-of-enough-length!!", algorithm="HS256"
    )
    unknown_user = jwt.encode(claims | {"exp": now + 99}, TEST_SECRET_KEY, algorithm="HS256")
    cases = {
        "expired": {"Authorization": f"Bearer {expired}"},
        "invalid": {"Authorization": f"Bearer {forged}"},
        "no longer exists": {"Authorization": f"Bearer {unknown_user}"},
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
