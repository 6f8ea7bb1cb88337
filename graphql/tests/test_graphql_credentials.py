"""Revocable credentials over GraphQL: apiKeys, revokeApiKey, createApiKey with an expiry,
logOut and changePassword."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pasar_core.testing import TEST_PASSWORD

KEY_FIELDS = "id name prefix status createdAt lastUsedAt expiresAt revokedAt"
CREATE_KEY = """
mutation ($name: String!, $in: Int, $at: DateTime) {
  createApiKey(name: $name, expiresInS: $in, expiresAt: $at) { id key prefix expiresAt }
}"""
REVOKE_KEY = f"mutation ($id: ID!) {{ revokeApiKey(id: $id) {{ {KEY_FIELDS} }} }}"
LIST_KEYS = f"{{ apiKeys {{ {KEY_FIELDS} }} }}"
LOG_IN = """
mutation ($email: String!, $password: String!) {
  logIn(email: $email, password: $password) { accessToken refreshToken }
}"""
LOG_OUT = "mutation ($t: String!) { logOut(refreshToken: $t) }"
CHANGE = """
mutation ($current: String!, $new: String!, $keys: Boolean! = false) {
  changePassword(currentPassword: $current, newPassword: $new, revokeApiKeys: $keys) {
    token { accessToken } sessionsRevoked apiKeysRevoked apiKeysActive
  }
}"""
NEW_PASSWORD = "another long passphrase"


def codes(body: Mapping[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed_up(gql) -> str:
    email = f"gqlc-{uuid.uuid4().hex[:10]}@example.com"
    body = gql(
        "mutation ($e: String!, $p: String!) { signUp(email: $e, password: $p) { id } }",
        {"e": email, "p": TEST_PASSWORD},
    )
    assert "errors" not in body, body
    return email


def log_in(gql, email: str, password: str = TEST_PASSWORD) -> dict[str, str]:
    body = gql(LOG_IN, {"email": email, "password": password})
    assert "errors" not in body, body
    tokens: dict[str, str] = body["data"]["logIn"]
    return tokens


def test_api_keys_listed_without_the_key_and_revoked(gql, make_user) -> None:
    headers, stranger = make_user(), make_user()
    expires = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    created = gql(CREATE_KEY, {"name": "ci", "at": expires}, headers=headers)["data"]
    key = created["createApiKey"]
    assert datetime.fromisoformat(key["expiresAt"]) > datetime.now(UTC) + timedelta(days=1)
    via_key = {"X-API-Key": key["key"]}
    assert gql("{ me { authenticatedVia } }", headers=via_key)["data"]["me"] == {
        "authenticatedVia": "api_key"
    }

    listed = gql(LIST_KEYS, headers=headers)
    assert key["key"] not in str(listed)
    [entry] = listed["data"]["apiKeys"]
    assert (entry["id"], entry["prefix"], entry["status"]) == (key["id"], key["prefix"], "ACTIVE")
    assert entry["lastUsedAt"] is not None
    assert codes(gql("{ apiKeys { key } }", headers=headers)) == ["GRAPHQL_VALIDATION_FAILED"]

    for other_id in (key["id"], str(uuid.uuid4()), "nope"):
        assert codes(gql(REVOKE_KEY, {"id": other_id}, headers=stranger)) == ["NOT_FOUND"]
    assert gql(LIST_KEYS, headers=stranger)["data"]["apiKeys"] == []

    revoked = gql(REVOKE_KEY, {"id": key["id"]}, headers=headers)["data"]["revokeApiKey"]
    assert revoked["status"] == "REVOKED"
    assert revoked["revokedAt"] is not None
    body = gql("{ me { id } }", headers=via_key)
    assert codes(body) == ["UNAUTHENTICATED"]
    assert body["errors"][0]["message"] == "the API key was revoked"


def test_bad_expiries_and_pages_are_typed_errors(gql, make_user) -> None:
    headers = make_user()
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    for variables in ({"name": "x", "in": 5}, {"name": "x", "at": past}):
        assert codes(gql(CREATE_KEY, variables, headers=headers)) == ["VALIDATION_FAILED"]
    both = {"name": "x", "in": 3600, "at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    assert codes(gql(CREATE_KEY, both, headers=headers)) == ["VALIDATION_FAILED"]
    assert codes(gql("{ apiKeys(first: 0) { id } }", headers=headers)) == ["VALIDATION_FAILED"]
    assert codes(gql(LIST_KEYS)) == ["UNAUTHENTICATED"]
    assert gql(LIST_KEYS, headers=headers)["data"]["apiKeys"] == []


def test_log_out_ends_the_sessions_access_token(gql) -> None:
    email = signed_up(gql)
    tokens = log_in(gql, email)
    assert "errors" not in gql("{ me { id } }", headers=bearer(tokens["accessToken"]))
    assert gql(LOG_OUT, {"t": tokens["refreshToken"]})["data"] == {"logOut": True}
    body = gql("{ me { id } }", headers=bearer(tokens["accessToken"]))
    assert codes(body) == ["UNAUTHENTICATED"]
    assert "session has ended" in body["errors"][0]["message"]


def test_change_password_revokes_every_session(gql) -> None:
    email = signed_up(gql)
    first, second = log_in(gql, email), log_in(gql, email)
    headers = bearer(first["accessToken"])
    gql(CREATE_KEY, {"name": "kept"}, headers=headers)

    wrong = gql(CHANGE, {"current": "not the password", "new": NEW_PASSWORD}, headers=headers)
    assert codes(wrong) == ["WRONG_PASSWORD"]
    same = gql(CHANGE, {"current": TEST_PASSWORD, "new": TEST_PASSWORD}, headers=headers)
    assert codes(same) == ["VALIDATION_FAILED"]
    assert codes(gql(CHANGE, {"current": TEST_PASSWORD, "new": NEW_PASSWORD})) == [
        "UNAUTHENTICATED"
    ]

    body = gql(CHANGE, {"current": TEST_PASSWORD, "new": NEW_PASSWORD}, headers=headers)
    changed = body["data"]["changePassword"]
    assert (changed["sessionsRevoked"], changed["apiKeysRevoked"], changed["apiKeysActive"]) == (
        2,
        0,
        1,
    )
    for old in (first, second):
        assert codes(gql("{ me { id } }", headers=bearer(old["accessToken"]))) == [
            "UNAUTHENTICATED"
        ]
    assert "errors" not in gql("{ me { id } }", headers=bearer(changed["token"]["accessToken"]))
    assert codes(gql(LOG_IN, {"email": email, "password": TEST_PASSWORD})) == ["UNAUTHENTICATED"]
    log_in(gql, email, NEW_PASSWORD)
