"""The Google consent flow end to end, as browsers do it: pasar's start page (sign in, cookie)
-> the emulator (real HTTP on 127.0.0.1) -> the callback; and the attacks on it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from pasar_core.services import Services
from pasar_core.settings import Settings
from pasar_core.storage.models import AuthToken, OAuthState
from pasar_core.testing import TEST_PASSWORD
from pasar_google_workspace import provider as g
from pasar_google_workspace.testing import CLIENT_ID, RunningEmulator
from sqlalchemy import select, text
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.consent import Browser, consent_at_google, error_code, state_of

TOOLS = ["gmail:read", "gmail:send", "sheets:read", "sheets:write", "sheets:list",
         "calendar:read", "calendar:create"]  # fmt: skip
EXPECTED = {g.GMAIL_READONLY, g.GMAIL_SEND, g.SPREADSHEETS, g.DRIVE_METADATA_READONLY,
            g.CALENDAR_EVENTS}  # fmt: skip


@pytest.fixture
def app(google_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(google_settings), raise_server_exceptions=False) as client:
        yield client


@dataclass(frozen=True)
class Person:
    """A pasar user (their API headers) with a browser of their own."""

    id: uuid.UUID
    email: str
    headers: dict[str, str]
    browser: Browser


@pytest.fixture
def user(app: TestClient) -> Callable[[], Person]:
    def make() -> Person:
        credentials = {"email": f"u-{uuid.uuid4().hex[:8]}@example.com", "password": TEST_PASSWORD}
        created = app.post("/auth/signup", json=credentials)
        assert created.status_code == 201
        token = app.post("/auth/token", json=credentials).json()["access_token"]
        return Person(uuid.UUID(created.json()["id"]), credentials["email"],
                      {"Authorization": f"Bearer {token}"}, Browser(app))  # fmt: skip

    return make


def services(app: TestClient) -> Services:
    found: Services = app.app_state["services"]
    return found


def query(app: TestClient, statement: Any) -> list[Any]:
    async def run() -> list[Any]:
        async with services(app).sessionmaker() as session:
            return list((await session.execute(statement)).all())

    assert app.portal is not None
    return app.portal.call(run)


def execute(app: TestClient, statement: Any) -> None:
    async def run() -> None:
        async with services(app).sessionmaker.begin() as session:
            await session.execute(statement)

    assert app.portal is not None
    app.portal.call(run)


def create_agent(app: TestClient, person: Person, tools: list[str]) -> dict[str, Any]:
    response = app.post(
        "/agents", json={"name": "assistant", "tools": tools}, headers=person.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def grants(app: TestClient) -> list[AuthToken]:
    return [row[0] for row in query(app, select(AuthToken))]


def states(app: TestClient) -> list[OAuthState]:
    return [row[0] for row in query(app, select(OAuthState))]


def params_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def set_cookie_headers(response: Any) -> list[str]:
    return [v for k, v in response.headers.multi_items() if k == "set-cookie"]


def test_the_link_opens_pasar_which_binds_the_browser_then_google_stores_encrypted_tokens(
    app: TestClient, user: Callable[[], Person], google_emulator: RunningEmulator
) -> None:
    ana = user()
    body = create_agent(app, ana, TOOLS)
    assert body["auth_required"] is True
    assert set(body["missing_scopes"]["google"]) == EXPECTED
    link = urlsplit(body["auth_url"])
    assert (link.scheme, link.netloc, link.path) == ("http", "testserver", "/auth/google/start")
    assert set(params_of(body["auth_url"])) == {"state"}
    assert len(state_of(body["auth_url"])) >= 32

    # The state is stored hashed, bound to the user, the agent and the scopes; no browser yet.
    (state_row,) = states(app)
    assert state_row.state_hash != state_of(body["auth_url"])
    assert state_row.user_id == ana.id
    assert state_row.agent_id == uuid.UUID(body["agent_id"])
    assert set(state_row.scopes) == EXPECTED
    assert state_row.browser_hash is None

    # The start page names the pasar account and asks its password; it goes nowhere by itself.
    page = ana.browser.open_start(body["auth_url"])
    assert page.status_code == 200
    assert ana.email in page.text
    assert "type=password name=password" in page.text
    assert page.headers["cache-control"] == "no-store"
    policy = page.headers["content-security-policy"]
    for directive in ("frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in policy  # no <base> re-aims the form
    assert google_emulator.state.hits["authorize"] == 0

    started = ana.browser.sign_in(body["auth_url"])
    assert started.status_code == 303, started.text
    (binding,) = [c for c in set_cookie_headers(started) if c.startswith("pasar_consent_") and
                  not c.startswith("pasar_consent_form_")]  # fmt: skip
    attributes = {part.strip().split("=")[0].lower() for part in binding.split(";")[1:]}
    assert {"httponly", "max-age", "path", "samesite"} <= attributes
    assert "samesite=lax" in binding.lower()
    assert "path=/auth/google/callback" in binding.lower()
    assert "secure" not in attributes  # the public URL is http here (Secure on https)
    secret = binding.split(";")[0].split("=", 1)[1]
    assert secret not in "".join(str(row) for row in query(app, text("SELECT * FROM oauth_states")))

    google = started.headers["location"]
    assert google.startswith(google_emulator.url + "/o/oauth2/v2/auth?")
    params = params_of(google)
    assert set(params["scope"].split()) == EXPECTED | {"openid", "email"}
    assert params["state"] == state_of(body["auth_url"])
    assert params["access_type"] == "offline"
    assert params["include_granted_scopes"] == "true"
    assert params["prompt"] == "consent"  # no refresh token stored yet
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert "=" not in params["code_challenge"]
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == "http://testserver/auth/google/callback"
    assert params["response_type"] == "code"

    page = ana.browser.land(consent_at_google(google))
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "Google connected" in page.text
    # The result page names both accounts: the Google one that consented and the pasar one.
    assert (
        "The Google account <strong>ada@example.com</strong> is now connected to the pasar "
        f"account <strong>{ana.email}</strong>" in page.text
    )
    assert page.headers["cache-control"] == "no-store"
    assert google_emulator.state.hits["token:authorization_code"] == 1

    (grant,) = grants(app)
    assert grant.user_id == ana.id
    assert set(grant.scopes) == EXPECTED | {
        "openid",
        "https://www.googleapis.com/auth/userinfo.email",
    }
    assert grant.status == "active"
    assert grant.account_email == "ada@example.com"
    assert (grant.account_subject or "").isdigit()
    assert grant.key_id == services(app).keyring.active_key_id
    tokens = list(google_emulator.state.access_tokens) + list(google_emulator.state.refresh_tokens)
    assert len(tokens) == 2
    dump = "\n".join(str(row) for row in query(app, text("SELECT * FROM auth_tokens")))
    dump += "\n".join(str(row) for row in query(app, text("SELECT * FROM oauth_states")))
    for token in tokens:
        assert token not in dump
        assert token.encode() not in (grant.access_token_enc or b"") + (
            grant.refresh_token_enc or b""
        )
    assert states(app) == []  # consumed
    assert any(c.startswith(binding.split("=")[0]) and "Max-Age=0" in c
               for c in set_cookie_headers(page))  # fmt: skip

    # Now the agent is fully authorized; a new agent needing a subset asks nothing.
    assert create_agent(app, ana, ["gmail:read"])["auth_required"] is False
    connections = app.get("/connections", headers=ana.headers).json()["connections"]
    assert [(c["provider"], c["health"], c["has_refresh_token"], c["account"])
            for c in connections] == [("google", "ok", True, "ada@example.com")]  # fmt: skip
    assert set(connections[0]["scopes"]) >= EXPECTED

    # More actions later: incremental consent, without prompt=consent (a refresh token exists).
    more = create_agent(app, ana, ["docs:read"])
    google = ana.browser.google_url(more["auth_url"])
    assert set(params_of(google)["scope"].split()) == {g.DOCUMENTS_READONLY, "openid", "email"}
    assert "prompt" not in params_of(google)
    assert ana.browser.land(consent_at_google(google)).status_code == 200
    (grant,) = grants(app)
    assert set(grant.scopes) >= EXPECTED | {g.DOCUMENTS_READONLY}
    assert grant.refresh_token_enc is not None  # not overwritten by the empty one


def test_the_result_page_names_the_google_account_that_consented(
    app: TestClient, user: Callable[[], Person]
) -> None:
    ana = user()
    body = create_agent(app, ana, ["calendar:read"])
    page = ana.browser.connect(body["auth_url"], emulator_user="ana.lima@gmail.example")
    assert page.status_code == 200
    assert "<strong>ana.lima@gmail.example</strong>" in page.text
    assert "ada@example.com" not in page.text
    (connection,) = app.get("/connections", headers=ana.headers).json()["connections"]
    assert connection["account"] == "ana.lima@gmail.example"
    gql = app.post("/graphql", json={"query": "{ connections { provider account health } }"},
                   headers=ana.headers).json()  # fmt: skip
    assert gql["data"]["connections"] == [
        {"provider": "google", "account": "ana.lima@gmail.example", "health": "ok"}
    ]


def test_another_google_account_does_not_inherit_the_old_refresh_token(
    app: TestClient, user: Callable[[], Person]
) -> None:
    ana = user()
    ana.browser.connect(create_agent(app, ana, ["gmail:read"])["auth_url"])
    (before,) = grants(app)
    assert before.refresh_token_enc is not None
    # A later consent (a refresh token is stored, so no prompt=consent) by another Google
    # account: its tokens must not be paired with the first account's refresh token.
    more = create_agent(app, ana, ["docs:read"])
    page = ana.browser.connect(more["auth_url"], emulator_user="bo@example.com")
    assert page.status_code == 200
    assert "<strong>bo@example.com</strong>" in page.text
    (after,) = grants(app)
    assert after.account_email == "bo@example.com"
    assert after.account_subject != before.account_subject
    assert after.refresh_token_enc is None


def test_two_browsers_a_forwarded_google_link_lands_nowhere_and_burns_nothing(
    app: TestClient, user: Callable[[], Person], google_emulator: RunningEmulator
) -> None:
    """The attack from issue 8: the attacker starts in their browser, forwards Google's consent
    URL; the victim consents with their Google account in their own browser."""
    attacker = user()
    victim = Browser(app)
    body = create_agent(app, attacker, ["gmail:read"])
    google = attacker.browser.google_url(body["auth_url"])
    redirect = consent_at_google(google, emulator_user="victim@example.com")
    page = victim.land(redirect)
    assert page.status_code == 403, page.text
    assert error_code(page) == "CONSENT_WRONG_BROWSER"
    assert "Google connected" not in page.text
    assert "do not share this page" in page.text
    assert grants(app) == []
    assert google_emulator.state.hits["token:authorization_code"] == 0  # the code was not used
    assert app.get("/connections", headers=attacker.headers).json() == {"connections": []}
    # The state is left as it was: a stranger holding it cannot burn it for its owner, whose
    # own browser still completes the consent (with their own Google account).
    (state,) = states(app)
    assert state.browser_hash is not None
    page = attacker.browser.land(consent_at_google(google))
    assert page.status_code == 200, page.text
    (grant,) = grants(app)
    assert (grant.user_id, grant.account_email) == (attacker.id, "ada@example.com")


def test_two_browsers_a_forwarded_start_link_needs_the_owners_password(
    app: TestClient, user: Callable[[], Person], google_emulator: RunningEmulator
) -> None:
    attacker = user()
    victim = user()  # a pasar user too, signed in with their own password in their browser
    body = create_agent(app, attacker, ["gmail:read"])
    page = victim.browser.open_start(body["auth_url"])
    assert page.status_code == 200
    assert attacker.email in page.text  # the victim sees whose account this would feed
    assert "close this page" in page.text
    for password in ("a wrong password", TEST_PASSWORD + "x", ""):
        answer = victim.browser.sign_in(body["auth_url"], password)
        assert answer.status_code == 401, answer.text
        assert "wrong password" in answer.text
        assert "location" not in answer.headers
        assert not any(c.startswith("pasar_consent_") and "form" not in c.split("=")[0]
                       for c in set_cookie_headers(answer))  # fmt: skip
    assert google_emulator.state.hits["authorize"] == 0
    assert [s.browser_hash for s in states(app)] == [None]
    assert grants(app) == []


def test_another_site_cannot_post_the_start_form_for_a_victim(
    app: TestClient, user: Callable[[], Person], google_emulator: RunningEmulator
) -> None:
    """Log-in CSRF: the attacker's page submits the attacker's state and password from the
    victim's browser, hoping Google redirects the victim silently."""
    attacker = user()
    victim = Browser(app)
    body = create_agent(app, attacker, ["gmail:read"])
    form = {"state": state_of(body["auth_url"]), "form_token": "guessed", "password": TEST_PASSWORD}
    path = urlsplit(body["auth_url"])
    post = {"content": "&".join(f"{k}={v}" for k, v in form.items()),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"}}  # fmt: skip
    answer = victim.request("POST", f"{path.path}?{path.query}", **post)
    assert answer.status_code == 403
    assert error_code(answer) == "CONSENT_FORM_REFUSED"
    # Even a browser holding the form cookie (it opened the page) is refused cross-site.
    answer = attacker.browser.sign_in(body["auth_url"], **{"Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 403
    assert error_code(answer) == "CONSENT_FORM_REFUSED"
    assert google_emulator.state.hits["authorize"] == 0
    assert [s.browser_hash for s in states(app)] == [None]


@pytest.mark.parametrize("case", ["missing", "tampered", "another_states", "never_started"])
def test_a_callback_without_the_right_cookie_is_refused_and_changes_nothing(
    case: str, app: TestClient, user: Callable[[], Person], google_emulator: RunningEmulator
) -> None:
    ana = user()
    body = create_agent(app, ana, ["sheets:read"])
    if case == "never_started":  # Google's URL built by hand, pasar's start page skipped
        redirect = consent_at_google(
            f"{google_emulator.url}/o/oauth2/v2/auth?client_id={CLIENT_ID}&response_type=code"
            f"&redirect_uri=http://testserver/auth/google/callback&scope={g.SPREADSHEETS_READONLY}"
            f"&state={state_of(body['auth_url'])}"
        )
        assert list(ana.browser.cookies) == []
    else:
        redirect = consent_at_google(ana.browser.google_url(body["auth_url"]))
        (name,) = [n for n in ana.browser.cookies if not n.startswith("pasar_consent_form_")]
    if case == "missing":
        ana.browser.cookies.delete(name)
    elif case == "tampered":
        value = ana.browser.cookies[name]
        ana.browser.cookies.set(name, ("A" if value[0] != "A" else "B") + value[1:],
                                domain="testserver.local", path="/auth/google/callback")  # fmt: skip
    elif case == "another_states":  # the cookie of the user's own other consent, renamed
        other = create_agent(app, ana, ["gmail:read"])
        ana.browser.google_url(other["auth_url"])
        value = ana.browser.cookies[name]
        ana.browser.cookies.delete(name)
        (other_name,) = [n for n in ana.browser.cookies if not n.startswith("pasar_consent_form_")]
        ana.browser.cookies.set(name, ana.browser.cookies[other_name], domain="testserver.local",
                                path="/auth/google/callback")  # fmt: skip
        assert ana.browser.cookies[name] != value
    before = {s.state_hash for s in states(app)}
    page = ana.browser.land(redirect)
    assert page.status_code == 403, page.text
    assert error_code(page) == "CONSENT_WRONG_BROWSER"
    assert google_emulator.state.hits["token:authorization_code"] == 0
    assert grants(app) == []
    assert {s.state_hash for s in states(app)} == before  # nothing consumed


def test_a_state_works_once(
    app: TestClient, user: Callable[[], Person], google_emulator: RunningEmulator
) -> None:
    ana = user()
    body = create_agent(app, ana, ["gmail:read"])
    google = ana.browser.google_url(body["auth_url"])
    redirect = consent_at_google(google)
    # The browser keeps a copy of its cookie, as a replaying attacker on it would.
    kept = httpx2.Cookies(ana.browser.cookies)
    assert ana.browser.land(redirect).status_code == 200
    ana.browser.cookies = kept
    google_emulator.state.hits.clear()
    again = ana.browser.land(redirect)
    assert again.status_code == 400
    assert error_code(again) == "CONSENT_STATE_INVALID"
    start = ana.browser.open_start(body["auth_url"])
    assert start.status_code == 400
    assert error_code(start) == "CONSENT_STATE_INVALID"
    assert google_emulator.state.hits["token:authorization_code"] == 0


def test_a_state_expires_at_the_start_page_and_at_the_callback(
    app: TestClient, user: Callable[[], Person], google_emulator: RunningEmulator
) -> None:
    ana = user()
    expire = text("UPDATE oauth_states SET expires_at = now() - interval '1 second'")
    body = create_agent(app, ana, ["gmail:read"])
    execute(app, expire)
    page = ana.browser.open_start(body["auth_url"])
    assert page.status_code == 400
    assert error_code(page) == "CONSENT_STATE_EXPIRED"

    body = create_agent(app, ana, ["gmail:read"])
    redirect = consent_at_google(ana.browser.google_url(body["auth_url"]))
    execute(app, expire)
    page = ana.browser.land(redirect)
    assert page.status_code == 400
    assert error_code(page) == "CONSENT_STATE_EXPIRED"
    assert google_emulator.state.hits["token:authorization_code"] == 0
    assert grants(app) == []
    assert len(states(app)) == 1  # the expired one the callback saw is tidied away


def test_a_state_is_bound_to_its_user(app: TestClient, user: Callable[[], Person]) -> None:
    alice, bob = user(), user()
    body = create_agent(app, alice, ["gmail:read"])
    # Bob opens Alice's link and signs in as himself: refused, Google never sees it.
    refused = bob.browser.sign_in(body["auth_url"], TEST_PASSWORD + "-bob")
    assert refused.status_code == 401
    assert "location" not in refused.headers
    # Bob presents Alice's state at the callback with the cookie of his own consent.
    mine = create_agent(app, bob, ["gmail:read"])
    google = bob.browser.google_url(mine["auth_url"])
    own = params_of(google)["state"]
    redirect = consent_at_google(google.replace(own, state_of(body["auth_url"])))
    page = bob.browser.land(redirect)
    assert page.status_code == 403
    assert error_code(page) == "CONSENT_WRONG_BROWSER"
    assert grants(app) == []
    # Alice's own browser completes it, and the grant is Alice's.
    assert alice.browser.connect(body["auth_url"]).status_code == 200
    (grant,) = grants(app)
    assert grant.user_id == alice.id
    assert app.get("/connections", headers=bob.headers).json() == {"connections": []}
    assert [c["provider"] for c in
            app.get("/connections", headers=alice.headers).json()["connections"]] == ["google"]  # fmt: skip


def test_wrong_passwords_on_the_start_page_count_as_failed_log_ins(
    app: TestClient, user: Callable[[], Person], google_emulator: RunningEmulator
) -> None:
    ana = user()
    body = create_agent(app, ana, ["gmail:read"])
    answers = [ana.browser.sign_in(body["auth_url"], "not the password") for _ in range(11)]
    assert [a.status_code for a in answers[:10]] == [401] * 10
    assert answers[10].status_code == 429
    assert error_code(answers[10]) == "RATE_LIMITED"
    assert int(answers[10].headers["retry-after"]) > 0
    token = app.post("/auth/token", json={"email": ana.email, "password": TEST_PASSWORD})
    assert token.status_code == 429  # the same throttle as POST /auth/token
    assert google_emulator.state.hits["authorize"] == 0


def test_unticked_scopes_store_what_was_granted(
    app: TestClient, user: Callable[[], Person]
) -> None:
    ana = user()
    body = create_agent(app, ana, ["gmail:read", "gmail:send"])
    page = ana.browser.connect(body["auth_url"], emulator_untick=g.GMAIL_SEND)
    assert page.status_code == 200
    assert "not granted" in page.text
    assert g.GMAIL_SEND in page.text
    (grant,) = grants(app)
    assert set(grant.scopes) - {"openid", "https://www.googleapis.com/auth/userinfo.email"} == {
        g.GMAIL_READONLY
    }
    again = app.put(f"/agents/{body['agent_id']}", json={"name": "again"}, headers=ana.headers)
    assert again.json()["auth_required"] is True
    assert again.json()["missing_scopes"] == {"google": [g.GMAIL_SEND]}


def test_denied_consent_is_a_clear_page_and_stores_nothing(
    app: TestClient, user: Callable[[], Person], google_emulator: RunningEmulator
) -> None:
    ana = user()
    body = create_agent(app, ana, ["calendar:read"])
    redirect = consent_at_google(ana.browser.google_url(body["auth_url"]), emulator_deny="1")
    assert "error=access_denied" in redirect.headers["location"]
    page = ana.browser.land(redirect)
    assert page.status_code == 400
    assert error_code(page) == "CONSENT_NOT_GRANTED"
    assert "did not grant access" in page.text
    assert grants(app) == []
    assert google_emulator.state.hits["token:authorization_code"] == 0


@pytest.mark.parametrize("case", ["forged", "missing", "huge", "foreign_provider"])
def test_bad_state_never_reaches_the_token_endpoint(
    case: str, app: TestClient, user: Callable[[], Person], google_emulator: RunningEmulator
) -> None:
    ana = user()
    body = create_agent(app, ana, ["sheets:read"])
    redirect = consent_at_google(ana.browser.google_url(body["auth_url"]))
    params = params_of(redirect.headers["location"])
    path = "/auth/google/callback"
    if case == "forged":
        params["state"] = "x" * 43
    elif case == "missing":
        del params["state"]
    elif case == "huge":
        params["state"] = "x" * 5000
    elif case == "foreign_provider":
        path = "/auth/github/callback"
    page = ana.browser.get(path, params=params)
    assert page.status_code == 400, page.text
    assert error_code(page) == "CONSENT_STATE_INVALID"
    assert page.headers["content-type"].startswith("text/html")
    assert google_emulator.state.hits["token:authorization_code"] == 0
    assert grants(app) == []
    assert len(states(app)) == 1  # the real state is untouched


@pytest.mark.parametrize("state", ["", "x" * 43, "x" * 5000])
def test_a_bad_start_link_is_a_clear_page(app: TestClient, state: str) -> None:
    page = Browser(app).get("/auth/google/start", params={"state": state})
    assert page.status_code == 400
    assert error_code(page) == "CONSENT_STATE_INVALID"
    assert "set-cookie" not in page.headers


def test_callback_without_code_or_with_a_bad_code_is_a_400_page(
    app: TestClient, user: Callable[[], Person], google_emulator: RunningEmulator
) -> None:
    ana = user()
    body = create_agent(app, ana, ["gmail:read"])
    ana.browser.google_url(body["auth_url"])
    page = ana.browser.get("/auth/google/callback", params={"state": state_of(body["auth_url"])})
    assert page.status_code == 400
    assert error_code(page) == "CONSENT_CODE_REJECTED"
    assert "no authorization code" in page.text
    body = create_agent(app, ana, ["gmail:read"])
    ana.browser.google_url(body["auth_url"])
    page = ana.browser.get("/auth/google/callback",
                           params={"state": state_of(body["auth_url"]), "code": "4/forged"})  # fmt: skip
    assert page.status_code == 400
    assert error_code(page) == "CONSENT_CODE_REJECTED"
    assert "invalid_grant" in page.text
    assert grants(app) == []


def test_disconnect_revokes_at_google_and_deletes_tokens(
    app: TestClient, user: Callable[[], Person], google_emulator: RunningEmulator
) -> None:
    ana = user()
    ana.browser.connect(create_agent(app, ana, ["gmail:read"])["auth_url"])
    response = app.delete("/connections/google", headers=ana.headers)
    assert response.status_code == 200
    assert response.json() == {"provider": "google", "revoked": True}
    assert google_emulator.state.hits["revoke"] == 1
    assert google_emulator.state.refresh_tokens == {}
    assert google_emulator.state.access_tokens == {}
    assert grants(app) == []
    assert app.delete("/connections/google", headers=ana.headers).status_code == 404


def test_graphql_compile_scopes_connections_and_disconnect(
    app: TestClient, user: Callable[[], Person]
) -> None:
    ana = user()
    headers = ana.headers
    body = create_agent(app, ana, ["gmail:read", "sheets:read"])
    document = """query($tools: [String!]!, $agent: ID) {
      compileScopes(tools: $tools, agentId: $agent) {
        provider highestRisk notGranted
        scopes { scope risk tools }
        diff { added removed kept }
      } }"""
    variables = {"tools": ["gmail:read", "gmail:send", "sheets:write", "sheets:read"],
                 "agent": body["agent_id"]}  # fmt: skip
    result = app.post("/graphql", json={"query": document, "variables": variables},
                      headers=headers).json()  # fmt: skip
    assert "errors" not in result, result
    (plan,) = result["data"]["compileScopes"]
    assert plan["provider"] == "google"
    assert plan["highestRisk"] == "RESTRICTED"
    by_scope = {s["scope"]: s for s in plan["scopes"]}
    assert set(by_scope) == {g.GMAIL_READONLY, g.GMAIL_SEND, g.SPREADSHEETS}
    assert by_scope[g.SPREADSHEETS]["tools"] == ["sheets:read", "sheets:write"]
    assert by_scope[g.GMAIL_SEND]["risk"] == "SENSITIVE"
    assert plan["diff"] == {"added": sorted([g.GMAIL_SEND, g.SPREADSHEETS]),
                            "removed": [g.SPREADSHEETS_READONLY], "kept": [g.GMAIL_READONLY]}  # fmt: skip
    assert set(plan["notGranted"]) == set(by_scope)

    bad = app.post("/graphql", json={"query": document, "variables": {"tools": ["no:pe"]}},
                   headers=headers).json()  # fmt: skip
    assert bad["errors"][0]["extensions"]["code"] == "UNKNOWN_TOOLS"

    ana.browser.connect(body["auth_url"])
    connections = app.post("/graphql", json={"query": "{ connections { provider health scopes } }"},
                           headers=headers).json()  # fmt: skip
    assert connections["data"]["connections"][0]["health"] == "ok"
    gone = app.post("/graphql", json={"query": 'mutation { disconnect(provider: "google") '
                                               "{ provider revoked } }"}, headers=headers).json()  # fmt: skip
    assert gone["data"]["disconnect"] == {"provider": "google", "revoked": True}


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        ("application/json", b'{"state": "x"}', 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("application/x-www-form-urlencoded", b"state=\xff\xfe&password=x", 400, "BAD_REQUEST"),
        ("application/x-www-form-urlencoded", b"a=1&" * 30, 400, "BAD_REQUEST"),
        ("application/x-www-form-urlencoded", b"password=" + b"x" * 20_000, 413,
         "PAYLOAD_TOO_LARGE"),
        ("application/x-www-form-urlencoded", b"state=&password=x", 400, "CONSENT_STATE_INVALID"),
        ("application/x-www-form-urlencoded", b"", 400, "CONSENT_STATE_INVALID"),
    ],
)  # fmt: skip
def test_a_malformed_start_form_is_a_typed_4xx_page(
    app: TestClient, content_type: str, body: bytes, status: int, code: str
) -> None:
    answer = Browser(app).request(
        "POST", "/auth/google/start", content=body, headers={"Content-Type": content_type}
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert error_code(answer) == code
