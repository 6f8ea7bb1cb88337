"""API keys over REST: created (optionally expiring), listed without the key, revoked, refused."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pasar_core.services import Services
from sqlalchemy import text
from starlette.testclient import TestClient


def run_on_app(client: TestClient, work: Callable[[Services], Coroutine[Any, Any, Any]]) -> Any:
    """Run `work(services)` on the app's own event loop (its connections live there)."""

    async def call() -> Any:
        return await work(client.app_state["services"])

    assert client.portal is not None
    return client.portal.call(call)


def sql(client: TestClient, statement: str, **params: Any) -> None:
    async def work(services: Services) -> None:
        async with services.sessionmaker.begin() as session:
            await session.execute(text(statement), params)

    run_on_app(client, work)


def create_key(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/api-keys", json={"name": "ci", **body}, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_keys_are_listed_without_the_key_and_track_their_use(client: TestClient, make_user) -> None:
    headers = make_user()
    created = create_key(client, headers, expires_in_s=3600)
    assert created["status"] == "active"
    expires_at = datetime.fromisoformat(created["expires_at"])
    assert timedelta(minutes=59) < expires_at - datetime.now(UTC) <= timedelta(hours=1)
    forever = create_key(client, headers, name="forever")
    assert forever["expires_at"] is None

    assert client.get("/agents", headers={"X-API-Key": created["key"]}).status_code == 200
    listing = client.get("/api-keys", headers=headers)
    assert listing.status_code == 200
    assert created["key"] not in listing.text
    assert forever["key"] not in listing.text
    keys = listing.json()["api_keys"]
    assert [key["name"] for key in keys] == ["forever", "ci"]  # newest first
    used = keys[1]
    assert set(used) == {
        "id", "name", "prefix", "status", "created_at", "last_used_at", "expires_at",
        "revoked_at", "organisation_id", "role", "operator",
    }  # fmt: skip
    assert used["prefix"] == created["prefix"]
    assert used["last_used_at"] is not None
    assert keys[0]["last_used_at"] is None
    # An API key can list the keys too, and sees the same, still without any key.
    by_key = client.get("/api-keys", headers={"X-API-Key": created["key"]})
    assert by_key.json()["api_keys"][0]["id"] == forever["id"]
    assert created["key"] not in by_key.text


def test_a_revoked_key_is_refused_at_once(client: TestClient, make_user) -> None:
    headers = make_user()
    created = create_key(client, headers)
    key_headers = {"X-API-Key": created["key"]}
    assert client.get("/agents", headers=key_headers).status_code == 200

    assert client.delete(f"/api-keys/{created['id']}", headers=headers).status_code == 204
    for attempt in (key_headers, {"Authorization": f"Bearer {created['key']}"}):
        refused = client.get("/agents", headers=attempt)
        assert refused.status_code == 401
        assert refused.json()["error"] == {
            "code": "UNAUTHENTICATED",
            "message": "the API key was revoked",
        }
    listed = client.get("/api-keys", headers=headers).json()["api_keys"][0]
    assert listed["status"] == "revoked"
    revoked_at = listed["revoked_at"]
    assert revoked_at is not None
    # Revoking again is fine and keeps the first revocation time.
    assert client.delete(f"/api-keys/{created['id']}", headers=headers).status_code == 204
    assert client.get("/api-keys", headers=headers).json()["api_keys"][0]["revoked_at"] == (
        revoked_at
    )


def test_a_key_may_revoke_itself(client: TestClient, make_user) -> None:
    created = create_key(client, make_user())
    key_headers = {"X-API-Key": created["key"]}
    assert client.delete(f"/api-keys/{created['id']}", headers=key_headers).status_code == 204
    assert client.get("/agents", headers=key_headers).status_code == 401


def test_another_users_key_is_not_found_and_keeps_working(client: TestClient, make_user) -> None:
    owner, stranger = make_user(), make_user()
    created = create_key(client, owner)
    for key_id in (created["id"], str(uuid.uuid4()), "not-a-uuid", "1 OR 1=1"):
        response = client.delete(f"/api-keys/{key_id}", headers=stranger)
        assert response.status_code == 404, key_id
        assert response.json()["error"]["code"] == "NOT_FOUND"
    assert client.get("/api-keys", headers=stranger).json() == {"api_keys": []}
    assert client.get("/agents", headers={"X-API-Key": created["key"]}).status_code == 200
    assert client.get("/api-keys", headers=owner).json()["api_keys"][0]["status"] == "active"


def test_an_expired_key_is_refused(client: TestClient, make_user) -> None:
    headers = make_user()
    created = create_key(
        client, headers, expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat()
    )
    key_headers = {"X-API-Key": created["key"]}
    assert client.get("/agents", headers=key_headers).status_code == 200
    # A day passes, as far as this key is concerned.
    sql(
        client,
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id",
        id=uuid.UUID(created["id"]),
    )
    refused = client.get("/agents", headers=key_headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "the API key has expired"
    assert client.get("/api-keys", headers=headers).json()["api_keys"][0]["status"] == "expired"


def test_bad_expiries_are_refused(client: TestClient, make_user) -> None:
    headers = make_user()
    now = datetime.now(UTC)
    for body, fragment in (
        ({"expires_in_s": 3600, "expires_at": (now + timedelta(days=1)).isoformat()}, "not both"),
        ({"expires_at": (now - timedelta(seconds=5)).isoformat()}, "in the future"),
        ({"expires_at": (now + timedelta(days=1)).replace(tzinfo=None).isoformat()}, "timezone"),
        ({"expires_at": (now + timedelta(days=4000)).isoformat()}, "ten years"),
        ({"expires_at": "tomorrow"}, "datetime"),
        ({"expires_in_s": 59}, "greater than or equal to 60"),
        ({"expires_in_s": 10**12}, "less than or equal"),
        ({"expires_in_s": "3600s"}, "integer"),
        ({"expires_in_s": 3600.5}, "integer"),
    ):
        response = client.post("/api-keys", json={"name": "x", **body}, headers=headers)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "VALIDATION_FAILED"
        assert fragment in json.dumps(response.json()["error"]), (body, response.json())
    assert client.get("/api-keys", headers=headers).json() == {"api_keys": []}


def test_listing_and_revoking_need_authentication(client: TestClient, make_user) -> None:
    assert client.get("/api-keys").status_code == 401
    assert client.delete(f"/api-keys/{uuid.uuid4()}").status_code == 401
    unknown = client.get("/api-keys", headers={"X-API-Key": "psr_nope"})
    assert unknown.status_code == 401
    assert unknown.json()["error"]["message"] == "the API key is invalid"
    headers = make_user()
    for query in ("limit=0", "limit=501", "offset=-1", "limit=x"):
        response = client.get(f"/api-keys?{query}", headers=headers)
        assert response.status_code == 400, query
        assert response.json()["error"]["code"] == "BAD_REQUEST"


KEY_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "name": st.none() | st.text(max_size=120) | st.integers(),
        "expires_in_s": st.none()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=5),
        "expires_at": st.none()
        | st.datetimes(timezones=st.none() | st.just(UTC)).map(datetime.isoformat)
        | st.text(max_size=20)
        | st.integers(),
        "extra": st.integers(),
    },
)


def test_any_key_body_is_created_or_refused_with_a_code(client: TestClient, make_user) -> None:
    headers = make_user()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=KEY_BODIES)
    def attempt(body: dict[str, Any]) -> None:
        before = len(client.get("/api-keys?limit=500", headers=headers).json()["api_keys"])
        response = client.post("/api-keys", json=body, headers=headers)
        assert response.status_code in (201, 422), (body, response.text)
        listed = client.get("/api-keys?limit=500", headers=headers).json()["api_keys"]
        if response.status_code == 201:
            assert listed[0]["id"] == response.json()["id"]
            assert len(listed) == before + 1
        else:
            assert response.json()["error"]["code"] == "VALIDATION_FAILED"
            assert len(listed) == before

    attempt()


def test_a_name_with_control_characters_is_refused(client: TestClient, make_user) -> None:
    headers = make_user()
    for name in (
        "ci\npsr_spoofed  active",
        "a\x1b[2Jb",
        "tab\there",
        "rtl\u202eoverride",
        "x\u2028",
    ):
        response = client.post("/api-keys", json={"name": name}, headers=headers)
        assert response.status_code == 422, name
        assert response.json()["error"]["code"] == "VALIDATION_FAILED"
        assert "control characters" in json.dumps(response.json()["error"]), name
    created = client.post("/api-keys", json={"name": "Zoë's key — día 1"}, headers=headers)
    assert created.status_code == 201, created.text
    listed = client.get("/api-keys", headers=headers).json()["api_keys"]
    assert [key["name"] for key in listed] == ["Zoë's key — día 1"]
