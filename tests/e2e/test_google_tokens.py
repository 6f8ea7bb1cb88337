"""Token custody against the emulator: refresh single-flight, invalid_grant, per-agent
enforcement at dispatch, tools running with the stored grant, key rotation."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pasar_core.crypto import Keyring, new_key, parse_keys
from pasar_core.errors import OAuthNotConfigured, ReauthorizationRequired, ToolNotPermitted
from pasar_core.oauth.enforcement import credentials_for_tool
from pasar_core.oauth.tokens import open_tokens, rotate_keys
from pasar_core.sandboxed_plugins.oauth import NarrowedTokens, narrowed_credentials
from pasar_core.services import Services
from pasar_core.settings import Settings
from pasar_core.specs import OAuthCredentials, ToolContext
from pasar_core.storage.models import AuthToken, NarrowedToken
from pasar_core.testing import TEST_PASSWORD
from pasar_google_workspace import provider as g
from pasar_google_workspace.emulator.state import MAIL_FULL
from pasar_google_workspace.testing import CLIENT_ID, CLIENT_SECRET, RunningEmulator
from sqlalchemy import select, text
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.consent import Browser, consent_at_google


@pytest.fixture
def app(google_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(google_settings), raise_server_exceptions=False) as client:
        yield client


def call(app: TestClient, coroutine_fn: Any, *args: Any) -> Any:
    assert app.portal is not None
    return app.portal.call(coroutine_fn, *args)


def services(app: TestClient) -> Services:
    found: Services = app.app_state["services"]
    return found


def sql(app: TestClient, statement: str) -> None:
    async def run() -> None:
        async with services(app).sessionmaker.begin() as session:
            await session.execute(text(statement))

    call(app, run)


def grant(app: TestClient) -> AuthToken:
    async def run() -> AuthToken:
        async with services(app).sessionmaker() as session:
            return (await session.scalars(select(AuthToken))).one()

    found: AuthToken = call(app, run)
    return found


def sign_up(app: TestClient) -> tuple[uuid.UUID, dict[str, str]]:
    """A new user; (user id, their bearer headers)."""
    credentials = {"email": f"u-{uuid.uuid4().hex[:8]}@example.com", "password": TEST_PASSWORD}
    user = app.post("/auth/signup", json=credentials).json()
    token = app.post("/auth/token", json=credentials).json()["access_token"]
    return uuid.UUID(user["id"]), {"Authorization": f"Bearer {token}"}


def consent_for_agent(
    app: TestClient, headers: dict[str, str], tools: list[str], **emulator: str
) -> str:
    """A new agent of the user with `tools`, through consent; its id."""
    body = app.post("/agents", json={"name": "a", "tools": tools}, headers=headers).json()
    assert Browser(app).connect(body["auth_url"], **emulator).status_code == 200
    agent_id: str = body["agent_id"]
    return agent_id


def connect(app: TestClient, tools: list[str], **emulator: str) -> tuple[uuid.UUID, str]:
    """A new user whose agent with `tools` went through consent; (user id, agent id)."""
    user_id, headers = sign_up(app)
    return user_id, consent_for_agent(app, headers, tools, **emulator)


def narrowed_rows(app: TestClient) -> int:
    async def run() -> int:
        async with services(app).sessionmaker() as session:
            return len(list(await session.scalars(select(NarrowedToken.grant_id))))

    found: int = call(app, run)
    return found


def creds(app: TestClient, user_id: uuid.UUID, tools: list[str], tool: str) -> OAuthCredentials:
    async def run() -> OAuthCredentials | None:
        return await credentials_for_tool(
            services(app), services(app).registry, user_id=user_id, agent_tool_ids=tools,
            tool_id=tool,
        )  # fmt: skip

    found = call(app, run)
    assert isinstance(found, OAuthCredentials)
    return found


# Each tool's call, and what of its result shows it read the emulator's seeded account.
CALLS: dict[str, tuple[dict[str, Any], Any]] = {
    "gmail:read": ({"query": "from:ana"}, lambda r: [m["subject"] for m in r["messages"]]),
    "sheets:read": ({"spreadsheet_id": "sheet1", "range": "A1:B2"}, lambda r: r["values"]),
    "calendar:read": (
        {"time_min": "2025-03-01T00:00:00Z"}, lambda r: [e["summary"] for e in r["events"]]
    ),
}  # fmt: skip
EXPECTED = {
    "gmail:read": ["Re: Q1 budget", "Q1 budget"],
    "sheets:read": [["Item", "Cost"], ["Rent", "1200"]],
    "calendar:read": ["Standup", "Budget review"],
}


def test_the_agent_runs_tools_with_the_stored_grant(
    app: TestClient, google_emulator: RunningEmulator, tmp_path: Any
) -> None:
    tools = ["gmail:read", "sheets:read", "calendar:read"]
    user_id, agent_id = connect(app, tools)
    for tool in tools:
        credentials = creds(app, user_id, tools, tool)
        assert credentials.scopes == services(app).registry.tool(tool).spec.scopes
        assert credentials.api_base_url == google_emulator.url
        assert "ya29" not in repr(credentials)
        ctx = ToolContext(user_id=str(user_id), storage_root=tmp_path, agent_id=agent_id,
                          oauth=credentials)  # fmt: skip
        args, expected = CALLS[tool]
        result = call(app, services(app).registry.invoke, tool, ctx, args)
        assert expected(result) == EXPECTED[tool], (tool, result)


def test_refresh_is_single_flight_under_concurrency(
    app: TestClient, google_emulator: RunningEmulator
) -> None:
    tools = ["gmail:read"]
    user_id, _ = connect(app, tools)
    before = grant(app)
    google_emulator.state.expire_access_tokens()
    sql(app, "UPDATE auth_tokens SET expires_at = now() + interval '30 seconds'")

    async def many() -> list[OAuthCredentials | None]:
        return await asyncio.gather(*(
            credentials_for_tool(services(app), services(app).registry, user_id=user_id,
                                 agent_tool_ids=tools, tool_id="gmail:read")
            for _ in range(12)
        ))  # fmt: skip

    results = call(app, many)
    assert google_emulator.state.hits["token:refresh_token"] == 1
    tokens = {r.access_token for r in results if r is not None}
    assert len(tokens) == 1
    assert tokens <= set(google_emulator.state.access_tokens)
    after = grant(app)
    assert after.refreshed_at is not None
    assert after.expires_at
    assert before.expires_at
    assert after.expires_at > before.expires_at
    keyring = services(app).keyring
    # The refresh response had no refresh token: the stored one is kept.
    assert open_tokens(keyring, after).refresh_token == open_tokens(keyring, before).refresh_token


def test_invalid_grant_marks_needs_reauth_and_is_never_retried(
    app: TestClient, google_emulator: RunningEmulator
) -> None:
    tools = ["calendar:read"]
    user_id, _agent_id = connect(app, tools)
    google_emulator.state.revoke_grant(CLIENT_ID)  # the user revoked access at Google
    sql(app, "UPDATE auth_tokens SET expires_at = now() - interval '1 second'")
    for _ in range(2):
        with pytest.raises(ReauthorizationRequired) as caught:
            creds(app, user_id, tools, "calendar:read")
        assert caught.value.code == "AUTH_REQUIRED"
        assert caught.value.details["tool"] == "calendar:read"
    assert google_emulator.state.hits["token:refresh_token"] == 1  # not retried
    row = grant(app)
    assert row.status == "needs_reauth"
    assert "invalid_grant" in (row.last_error or "")
    # Reconnecting through the link in the error heals the grant; it asks for a refresh token.
    assert caught.value.auth_url is not None
    browser = Browser(app)
    google = browser.google_url(caught.value.auth_url)
    assert "prompt=consent" in google
    assert browser.land(consent_at_google(google)).status_code == 200
    assert grant(app).status == "active"
    healed = creds(app, user_id, tools, "calendar:read")
    assert google_emulator.state.access_tokens[healed.access_token].scopes >= healed.scopes


def test_enforcement_when_the_grant_is_broader_than_the_agent(
    app: TestClient, google_emulator: RunningEmulator
) -> None:
    user_id, _ = connect(app, ["gmail:read", "gmail:send", "calendar:create"])
    narrow = ["gmail:read"]
    assert creds(app, user_id, narrow, "gmail:read").scopes == {g.GMAIL_READONLY}
    for tool in ("gmail:send", "calendar:create", "files:nope"):
        with pytest.raises(ToolNotPermitted) as caught:
            creds(app, user_id, narrow, tool)
        assert caught.value.code == "NOT_PERMITTED"


def test_a_scope_unticked_at_consent_asks_to_reconnect(
    app: TestClient, google_emulator: RunningEmulator
) -> None:
    tools = ["gmail:read", "gmail:send"]
    user_id, _ = connect(app, tools, emulator_untick=g.GMAIL_SEND)
    reader = creds(app, user_id, tools, "gmail:read")
    issued = google_emulator.state.access_tokens[reader.access_token]
    assert g.GMAIL_READONLY in issued.scopes
    assert g.GMAIL_SEND not in issued.scopes
    with pytest.raises(ReauthorizationRequired) as caught:
        creds(app, user_id, tools, "gmail:send")
    assert caught.value.missing == [g.GMAIL_SEND]


def test_no_grant_means_reconnect_with_a_link(app: TestClient) -> None:
    credentials = {"email": "solo@example.com", "password": TEST_PASSWORD}
    user_id = uuid.UUID(app.post("/auth/signup", json=credentials).json()["id"])
    with pytest.raises(ReauthorizationRequired) as caught:
        creds(app, user_id, ["docs:read"], "docs:read")
    assert caught.value.auth_url is not None
    google = Browser(app).google_url(caught.value.auth_url)
    assert "documents.readonly" in google


def test_a_tool_without_provider_gets_no_credentials(app: TestClient) -> None:
    async def run() -> OAuthCredentials | None:
        return await credentials_for_tool(
            services(app), services(app).registry, user_id=uuid.uuid4(),
            agent_tool_ids=["txt:read"], tool_id="txt:read",
        )  # fmt: skip

    assert call(app, run) is None


def test_keys_rotate_re_encrypts_with_the_active_key(
    app: TestClient, google_emulator: RunningEmulator
) -> None:
    _user_id, _ = connect(app, ["gmail:read"])
    old: Keyring = services(app).keyring
    before = open_tokens(old, grant(app))
    key_id, key = new_key()
    old_id = old.active_key_id
    rotated = dataclasses.replace(services(app), keyring=parse_keys(f"{key_id}:{key}"))
    # The new keyring alone cannot read the old rows; with the old key after it, it can.
    both = dataclasses.replace(
        rotated,
        keyring=Keyring({key_id: rotated.keyring._keys[key_id], old_id: old._keys[old_id]},
                        active=key_id),
    )  # fmt: skip
    counts = call(app, rotate_keys, both)
    assert counts["auth_tokens"] == 1
    row = grant(app)
    assert row.key_id == key_id
    assert open_tokens(rotated.keyring, row) == before
    assert call(app, rotate_keys, both)["auth_tokens"] == 0


def test_refreshing_on_a_server_without_the_oauth_client_is_oauth_not_configured(
    app: TestClient, google_emulator: RunningEmulator, pasar_settings: Settings
) -> None:
    """A grant stored while Google was configured, refreshed by a server that no longer is."""
    tools = ["calendar:read"]
    user_id, _ = connect(app, tools)
    sql(app, "UPDATE auth_tokens SET expires_at = now() - interval '1 second'")
    unconfigured = pasar_settings.with_overrides(
        oauth_clients={k: v for k, v in pasar_settings.oauth_clients.items() if k != "google"}
    )
    with TestClient(create_app(unconfigured)) as other:
        with pytest.raises(OAuthNotConfigured) as caught:
            creds(other, user_id, tools, "calendar:read")
        assert caught.value.code == "OAUTH_NOT_CONFIGURED"
        assert caught.value.details == {"provider": "google"}
        # Consent cannot be offered either: asking for it is the same typed error.
        sql(other, "DELETE FROM auth_tokens")
        with pytest.raises(OAuthNotConfigured):
            creds(other, user_id, tools, "calendar:read")
    assert google_emulator.state.hits["token:refresh_token"] == 0  # nothing was sent to Google


def test_an_agent_gets_a_token_for_its_own_scopes_only(
    app: TestClient, google_emulator: RunningEmulator
) -> None:
    """The user's grant has send; an agent with only gmail:read gets a token minted for
    gmail.readonly (a `scope` subset on refresh), which the emulator refuses for a send."""
    user_id, _ = connect(app, ["gmail:read", "gmail:send"])
    granted = set(grant(app).scopes)
    assert {g.GMAIL_READONLY, g.GMAIL_SEND} <= granted
    reader = creds(app, user_id, ["gmail:read"], "gmail:read")
    issued = google_emulator.state.access_tokens[reader.access_token]
    assert issued.scopes == {g.GMAIL_READONLY}
    bearer = {"Authorization": f"Bearer {reader.access_token}"}
    sent = httpx.post(f"{google_emulator.url}/gmail/v1/users/me/messages/send",
                      json={"raw": "VG86IGFAZXhhbXBsZS5jb20KCmhp"}, headers=bearer)  # fmt: skip
    assert sent.status_code == 403, sent.text
    listed = httpx.get(f"{google_emulator.url}/gmail/v1/users/me/messages", headers=bearer)
    assert listed.status_code == 200, listed.text
    # The agent's token is kept, encrypted, and used again until it nears its expiry.
    minted = google_emulator.state.hits["token:refresh_token"]
    assert creds(app, user_id, ["gmail:read"], "gmail:read").access_token == reader.access_token
    assert google_emulator.state.hits["token:refresh_token"] == minted

    async def stored() -> list[bytes]:
        async with services(app).sessionmaker() as session:
            return list(await session.scalars(select(NarrowedToken.access_token_enc)))

    [blob] = call(app, stored)
    assert reader.access_token.encode() not in blob
    sql(app, "UPDATE narrowed_tokens SET expires_at = now() + interval '30 seconds'")
    again = creds(app, user_id, ["gmail:read"], "gmail:read")
    assert again.access_token != reader.access_token
    assert google_emulator.state.access_tokens[again.access_token].scopes == {g.GMAIL_READONLY}
    assert google_emulator.state.hits["token:refresh_token"] == minted + 1
    # An agent with both tools needs every API scope of the grant: the grant's own token.
    sender = creds(app, user_id, ["gmail:read", "gmail:send"], "gmail:send")
    assert google_emulator.state.access_tokens[sender.access_token].scopes >= {g.GMAIL_SEND}


def test_the_emulator_refuses_a_refresh_scope_beyond_the_grant(
    app: TestClient, google_emulator: RunningEmulator
) -> None:
    connect(app, ["gmail:read"])
    refresh = open_tokens(services(app).keyring, grant(app)).refresh_token
    assert refresh
    answer = httpx.post(f"{google_emulator.url}/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "scope": g.GMAIL_SEND,
    })  # fmt: skip
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_scope"


def test_narrowed_tokens_do_not_outlive_a_switch_to_another_google_account(
    app: TestClient, google_emulator: RunningEmulator
) -> None:
    """Ada's agent holds a token narrowed from Ada's grant; the user then consents with Bo's
    Google account: the agent's next call acts on Bo's data, never on Ada's."""
    user_id, headers = sign_up(app)
    consent_for_agent(app, headers, ["gmail:read", "gmail:send"])
    issued = google_emulator.state.access_tokens
    reader = creds(app, user_id, ["gmail:read"], "gmail:read")
    assert (issued[reader.access_token].account, issued[reader.access_token].scopes) == (
        "ada@example.com", frozenset({g.GMAIL_READONLY}),
    )  # fmt: skip
    assert narrowed_rows(app) == 1
    # A consent for another agent, by Bo (a refresh token is stored: no prompt=consent, so
    # Google sends none; Ada's is not kept for Bo's grant).
    consent_for_agent(app, headers, ["docs:read"], emulator_user="bo@example.com")
    assert grant(app).account_email == "bo@example.com"
    # Nothing to narrow Bo's grant with: reconnect (the link asks for a refresh token).
    try:
        leaked = creds(app, user_id, ["gmail:read"], "gmail:read")
    except ReauthorizationRequired as error:
        caught = error
    else:
        pytest.fail(f"the agent got a token of {issued[leaked.access_token].account}")
    assert narrowed_rows(app) == 0
    assert caught.auth_url is not None
    assert "prompt=consent" in Browser(app).google_url(caught.auth_url)
    assert Browser(app).connect(caught.auth_url, emulator_user="bo@example.com")
    after = creds(app, user_id, ["gmail:read"], "gmail:read")
    assert (issued[after.access_token].account, issued[after.access_token].scopes) == (
        "bo@example.com", frozenset({g.GMAIL_READONLY}),
    )  # fmt: skip


def test_a_grant_refused_at_refresh_or_disconnected_keeps_no_narrowed_token(
    app: TestClient, google_emulator: RunningEmulator
) -> None:
    user_id, headers = sign_up(app)
    consent_for_agent(app, headers, ["gmail:read", "gmail:send"])
    creds(app, user_id, ["gmail:read"], "gmail:read")
    assert narrowed_rows(app) == 1
    google_emulator.state.revoke_grant(CLIENT_ID)
    sql(app, "UPDATE auth_tokens SET expires_at = now() - interval '1 second'")
    with pytest.raises(ReauthorizationRequired):
        creds(app, user_id, ["gmail:read"], "gmail:read")
    assert grant(app).status == "needs_reauth"
    assert narrowed_rows(app) == 0
    # Connected again, narrowed again, then disconnected: the narrowed token goes with it.
    consent_for_agent(app, headers, ["gmail:read", "gmail:send"])
    creds(app, user_id, ["gmail:read"], "gmail:read")
    assert narrowed_rows(app) == 1
    assert app.delete("/connections/google", headers=headers).status_code == 200
    assert narrowed_rows(app) == 0


def test_a_granted_scope_no_tool_declares_is_narrowed_away(
    app: TestClient, google_emulator: RunningEmulator
) -> None:
    """Another app of the same OAuth client was granted full Gmail (https://mail.google.com/,
    not among the provider's scopes); include_granted_scopes brings it into pasar's grant. An
    agent reading mail gets a token for gmail.readonly alone, which cannot send."""
    google_emulator.state.grants[CLIENT_ID] = {MAIL_FULL}
    user_id, _ = connect(app, ["gmail:read"])
    assert {MAIL_FULL, g.GMAIL_READONLY} <= set(grant(app).scopes)
    reader = creds(app, user_id, ["gmail:read"], "gmail:read")
    assert google_emulator.state.access_tokens[reader.access_token].scopes == {g.GMAIL_READONLY}
    bearer = {"Authorization": f"Bearer {reader.access_token}"}
    sent = httpx.post(f"{google_emulator.url}/gmail/v1/users/me/messages/send",
                      json={"raw": "VG86IGFAZXhhbXBsZS5jb20KCmhp"}, headers=bearer)  # fmt: skip
    assert sent.status_code == 403, sent.text
    listed = httpx.get(f"{google_emulator.url}/gmail/v1/users/me/messages", headers=bearer)
    assert listed.status_code == 200, listed.text


def test_a_sandboxed_tools_token_does_not_outlive_a_switch_to_another_google_account(
    app: TestClient, google_emulator: RunningEmulator
) -> None:
    """The per-process cache of tokens narrowed for sandboxed tools forgets Ada's once the
    grant is Bo's."""
    user_id, headers = sign_up(app)
    consent_for_agent(app, headers, ["gmail:read", "gmail:send"])
    cache, issued = NarrowedTokens(), google_emulator.state.access_tokens

    def sandboxed() -> str:
        granted = creds(app, user_id, ["gmail:read"], "gmail:read")
        found: OAuthCredentials = call(app, narrowed_credentials, services(app), cache, user_id,
                                       granted)  # fmt: skip
        return found.access_token

    first = sandboxed()
    assert issued[first].account == "ada@example.com"
    assert sandboxed() == first  # kept while valid
    consent_for_agent(app, headers, ["docs:read"], emulator_user="bo@example.com")
    with pytest.raises(ReauthorizationRequired) as caught:
        creds(app, user_id, ["gmail:read"], "gmail:read")  # no refresh token of Bo's yet
    assert caught.value.auth_url is not None
    assert Browser(app).connect(caught.value.auth_url, emulator_user="bo@example.com")
    after = sandboxed()
    assert (issued[after].account, issued[after].scopes) == (
        "bo@example.com", frozenset({g.GMAIL_READONLY}),
    )  # fmt: skip
