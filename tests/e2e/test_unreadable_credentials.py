"""Stored credentials that fail to decrypt (a byte flipped, rows swapped between users, the key
removed from the keyring) fail the tool call at once with a typed error the model reads; an
OAuth grant is marked needs_reauth, so the next run asks for consent, which heals it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pasar_core.crypto import new_key
from pasar_core.services import Services
from pasar_core.settings import Settings
from pasar_core.storage.models import AgentSecret, AuthToken
from pasar_core.testing import TEST_PASSWORD
from sqlalchemy import select, update
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.consent import Browser
from tests.e2e.runs import call, create_agent, execute, scripted

OLD_KEY, NEW_KEY = new_key(), new_key()


@pytest.fixture
def settings(google_settings: Settings) -> Settings:
    return google_settings.with_overrides(encryption_keys=f"{OLD_KEY[0]}:{OLD_KEY[1]}")


@pytest.fixture
def app(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def services(app: TestClient) -> Services:
    found: Services = app.app_state["services"]
    return found


def run_sql(app: TestClient, work: Any) -> Any:
    async def run() -> Any:
        async with services(app).sessionmaker.begin() as session:
            return await work(session)

    assert app.portal is not None
    return app.portal.call(run)


def sign_up(app: TestClient) -> tuple[uuid.UUID, dict[str, str]]:
    credentials = {"email": f"u-{uuid.uuid4().hex[:8]}@example.com", "password": TEST_PASSWORD}
    user_id = uuid.UUID(app.post("/auth/signup", json=credentials).json()["id"])
    token = app.post("/auth/token", json=credentials).json()["access_token"]
    return user_id, {"Authorization": f"Bearer {token}"}


def mail_agent(app: TestClient, headers: dict[str, str]) -> str:
    """An agent reading Gmail whose user went through consent."""
    config = scripted(call("gmail:read", query="is:unread"))
    agent_id = create_agent(app, headers, ["gmail:read"], config)
    saved = app.put(f"/agents/{agent_id}", json={"name": "mail"}, headers=headers).json()
    assert Browser(app).connect(saved["auth_url"]).status_code == 200
    return agent_id


def tool_error(run: dict[str, Any]) -> str:
    (result,) = [step for step in run["steps"] if step["type"] == "tool_result"]
    assert "result" not in result, result
    error: str = result["error"]
    return error


def connection(app: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    (found,) = app.get("/connections", headers=headers).json()["connections"]
    graphql = app.post("/graphql", json={"query": "{ connections { health lastError } }"},
                       headers=headers).json()["data"]["connections"]  # fmt: skip
    assert graphql == [{"health": found["health"], "lastError": found["last_error"]}]
    return dict(found)


def flip_a_byte(blob: bytes | None) -> bytes:
    assert blob is not None
    return blob[:20] + bytes([blob[20] ^ 0x01]) + blob[21:]


def assert_fails_then_asks_to_reconnect(
    app: TestClient, headers: dict[str, str], agent_id: str
) -> None:
    run = execute(app, headers, agent_id)  # 200 and `succeeded`: the model read the error
    assert tool_error(run).startswith("CREDENTIALS_UNREADABLE: reconnect google: the stored ")
    shown = connection(app, headers)
    assert shown["health"] == "needs_reauth"
    assert "cannot be decrypted" in shown["last_error"]
    # The next run knows before it starts: it waits for consent, which heals the grant.
    paused = app.post(f"/agents/{agent_id}/execute", json={"input": "again"}, headers=headers)
    assert paused.status_code == 202
    assert paused.json()["status"] == "awaiting_authorization"
    assert Browser(app).connect(paused.json()["auth_url"]).status_code == 200
    assert connection(app, headers)["health"] == "ok"
    healed = execute(app, headers, agent_id)
    (result,) = [step for step in healed["steps"] if step["type"] == "tool_result"]
    assert "error" not in result, result


def test_a_tampered_token_row_fails_the_tool_call_and_marks_needs_reauth(
    app: TestClient,
) -> None:
    user_id, headers = sign_up(app)
    agent_id = mail_agent(app, headers)

    async def tamper(session: Any) -> None:
        row = (await session.scalars(select(AuthToken).where(AuthToken.user_id == user_id))).one()
        row.access_token_enc = flip_a_byte(row.access_token_enc)

    run_sql(app, tamper)
    assert_fails_then_asks_to_reconnect(app, headers, agent_id)


def test_token_rows_swapped_between_users_fail_for_both(app: TestClient) -> None:
    (alice, alice_headers), (bob, bob_headers) = sign_up(app), sign_up(app)
    alice_agent, bob_agent = mail_agent(app, alice_headers), mail_agent(app, bob_headers)

    async def swap(session: Any) -> None:
        rows = {
            row.user_id: (row.access_token_enc, row.refresh_token_enc)
            for row in await session.scalars(select(AuthToken))
        }
        for owner, other in ((alice, bob), (bob, alice)):
            access, refresh = rows[other]
            await session.execute(
                update(AuthToken)
                .where(AuthToken.user_id == owner)
                .values(access_token_enc=access, refresh_token_enc=refresh)
            )

    run_sql(app, swap)
    for headers, agent_id in ((alice_headers, alice_agent), (bob_headers, bob_agent)):
        run = execute(app, headers, agent_id)
        assert tool_error(run).startswith("CREDENTIALS_UNREADABLE:")
        assert connection(app, headers)["health"] == "needs_reauth"


def test_a_token_sealed_with_a_removed_key_fails_the_tool_call(settings: Settings) -> None:
    with TestClient(create_app(settings)) as before:
        _, headers = sign_up(before)
        agent_id = mail_agent(before, headers)
    # The operator replaced the key instead of adding one in front of it.
    rotated = settings.with_overrides(encryption_keys=f"{NEW_KEY[0]}:{NEW_KEY[1]}")
    with TestClient(create_app(rotated)) as after:
        assert_fails_then_asks_to_reconnect(after, headers, agent_id)


@pytest.mark.parametrize("damage", ["tampered", "moved", "key_removed"])
def test_an_unreadable_agent_secret_fails_the_tool_call(settings: Settings, damage: str) -> None:
    with TestClient(create_app(settings)) as app:
        _, headers = sign_up(app)
        config = scripted(call("postgres:list_tables"))
        agent_id = create_agent(app, headers, ["postgres:list_tables"], config)
        other_id = create_agent(app, headers, ["postgres:list_tables"], config)
        for agent in (agent_id, other_id):
            put = app.put(f"/agents/{agent}/secrets/postgres_dsn",
                          json={"value": f"postgresql://u:p@db.example/{agent}"}, headers=headers)  # fmt: skip
            assert put.status_code == 204

        async def tamper(session: Any) -> None:
            rows = {r.agent_id: r for r in await session.scalars(select(AgentSecret))}
            mine, theirs = rows[uuid.UUID(agent_id)], rows[uuid.UUID(other_id)]
            if damage == "tampered":
                mine.value_enc = flip_a_byte(mine.value_enc)
            elif damage == "moved":
                mine.value_enc = theirs.value_enc

        run_sql(app, tamper)
    keys = f"{NEW_KEY[0]}:{NEW_KEY[1]}" if damage == "key_removed" else settings.encryption_keys
    with TestClient(create_app(settings.with_overrides(encryption_keys=keys))) as app:
        run = execute(app, headers, agent_id)
        error = tool_error(run)
        assert error.startswith("SECRET_UNREADABLE: the agent's secret 'postgres_dsn' cannot")
        assert "set it again" in error
        assert "db.example" not in str(run)
