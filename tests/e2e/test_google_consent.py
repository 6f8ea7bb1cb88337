"""The Google consent flow end to end: REST app -> emulator (real HTTP on 127.0.0.1) -> callback."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
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

TOOLS = ["gmail:read", "gmail:send", "sheets:read", "sheets:write", "sheets:list",
         "calendar:read", "calendar:create"]  # fmt: skip
EXPECTED = {g.GMAIL_READONLY, g.GMAIL_SEND, g.SPREADSHEETS, g.DRIVE_METADATA_READONLY,
            g.CALENDAR_EVENTS}  # fmt: skip


@pytest.fixture
def app(google_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(google_settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def user(app: TestClient) -> Callable[[], dict[str, str]]:
    def make() -> dict[str, str]:
        credentials = {"email": f"u-{uuid.uuid4().hex[:8]}@example.com", "password": TEST_PASSWORD}
        assert app.post("/auth/signup", json=credentials).status_code == 201
        token = app.post("/auth/token", json=credentials).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

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


def consent(auth_url: str, **emulator: str) -> httpx.Response:
    """Follow the consent link at the emulator; the answer redirects to our callback."""
    url = auth_url + ("&" + urlencode(emulator) if emulator else "")
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    return response


def callback(app: TestClient, redirect: httpx.Response) -> Any:
    location = urlsplit(redirect.headers["location"])
    assert location.path == "/auth/google/callback"
    return app.get(f"{location.path}?{location.query}")


def create_agent(app: TestClient, headers: dict[str, str], tools: list[str]) -> dict[str, Any]:
    response = app.post("/agents", json={"name": "assistant", "tools": tools}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_agent_gets_a_correct_consent_link_and_the_flow_stores_encrypted_tokens(
    app: TestClient, user: Callable[[], dict[str, str]], google_emulator: RunningEmulator
) -> None:
    headers = user()
    body = create_agent(app, headers, TOOLS)
    assert body["auth_required"] is True
    assert set(body["missing_scopes"]["google"]) == EXPECTED
    url = urlsplit(body["auth_url"])
    assert f"{url.scheme}://{url.netloc}" == google_emulator.url
    assert url.path == "/o/oauth2/v2/auth"
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert set(params["scope"].split()) == EXPECTED
    assert params["access_type"] == "offline"
    assert params["include_granted_scopes"] == "true"
    assert params["prompt"] == "consent"  # no refresh token stored yet
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert "=" not in params["code_challenge"]
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == "http://testserver/auth/google/callback"
    assert params["response_type"] == "code"
    assert len(params["state"]) >= 32

    # The state is stored hashed, bound to the user, the agent and the scopes.
    (state_row,) = query(app, select(OAuthState))
    assert state_row[0].state_hash != params["state"]
    assert state_row[0].agent_id == uuid.UUID(body["agent_id"])
    assert set(state_row[0].scopes) == EXPECTED

    page = callback(app, consent(body["auth_url"]))
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "Google connected" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert google_emulator.state.hits["token:authorization_code"] == 1

    (grant,) = [row[0] for row in query(app, select(AuthToken))]
    assert set(grant.scopes) == EXPECTED
    assert grant.status == "active"
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
    assert query(app, select(OAuthState)) == []  # consumed

    # Now the agent is fully authorized; a new agent needing a subset asks nothing.
    assert create_agent(app, headers, ["gmail:read"])["auth_required"] is False
    connections = app.get("/connections", headers=headers).json()["connections"]
    assert [(c["provider"], c["health"], c["has_refresh_token"]) for c in connections] == [
        ("google", "ok", True)
    ]
    assert set(connections[0]["scopes"]) == EXPECTED

    # More actions later: incremental consent, without prompt=consent (a refresh token exists).
    more = create_agent(app, headers, ["docs:read"])
    params = {k: v[0] for k, v in parse_qs(urlsplit(more["auth_url"]).query).items()}
    assert params["scope"] == g.DOCUMENTS_READONLY
    assert "prompt" not in params
    assert callback(app, consent(more["auth_url"])).status_code == 200
    (grant,) = [row[0] for row in query(app, select(AuthToken))]
    assert set(grant.scopes) == EXPECTED | {g.DOCUMENTS_READONLY}
    assert grant.refresh_token_enc is not None  # not overwritten by the empty one


def test_unticked_scopes_store_what_was_granted(
    app: TestClient, user: Callable[[], dict[str, str]]
) -> None:
    headers = user()
    body = create_agent(app, headers, ["gmail:read", "gmail:send"])
    page = callback(app, consent(body["auth_url"], emulator_untick=g.GMAIL_SEND))
    assert page.status_code == 200
    assert "not granted" in page.text
    assert g.GMAIL_SEND in page.text
    (grant,) = [row[0] for row in query(app, select(AuthToken))]
    assert grant.scopes == [g.GMAIL_READONLY]
    again = app.put(f"/agents/{body['agent_id']}", json={"name": "again"}, headers=headers).json()
    assert again["auth_required"] is True
    assert again["missing_scopes"] == {"google": [g.GMAIL_SEND]}


def test_denied_consent_is_a_clear_page_and_stores_nothing(
    app: TestClient, user: Callable[[], dict[str, str]], google_emulator: RunningEmulator
) -> None:
    body = create_agent(app, user(), ["calendar:read"])
    redirect = consent(body["auth_url"], emulator_deny="1")
    assert "error=access_denied" in redirect.headers["location"]
    page = callback(app, redirect)
    assert page.status_code == 400
    assert "did not grant access" in page.text
    assert query(app, select(AuthToken)) == []
    assert google_emulator.state.hits["token:authorization_code"] == 0


def _state_of(auth_url: str) -> str:
    return parse_qs(urlsplit(auth_url).query)["state"][0]


@pytest.mark.parametrize(
    "case", ["forged", "missing", "reused", "expired", "foreign_provider", "huge"]
)
def test_bad_state_never_reaches_the_token_endpoint(
    case: str,
    app: TestClient,
    user: Callable[[], dict[str, str]],
    google_emulator: RunningEmulator,
) -> None:
    body = create_agent(app, user(), ["sheets:read"])
    redirect = consent(body["auth_url"])
    location = urlsplit(redirect.headers["location"])
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    path = "/auth/google/callback"
    if case == "forged":
        params["state"] = "x" * 43
    elif case == "missing":
        del params["state"]
    elif case == "huge":
        params["state"] = "x" * 5000
    elif case == "reused":
        assert app.get(path, params=params).status_code == 200
        google_emulator.state.hits.clear()
    elif case == "expired":
        execute(app, text("UPDATE oauth_states SET expires_at = now() - interval '1 minute'"))
    elif case == "foreign_provider":
        path = "/auth/github/callback"
    page = app.get(path, params=params)
    assert page.status_code == 400, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert google_emulator.state.hits["token:authorization_code"] == 0
    if case != "reused":
        assert query(app, select(AuthToken)) == []


def test_a_state_is_bound_to_its_user(app: TestClient, user: Callable[[], dict[str, str]]) -> None:
    alice, bob = user(), user()
    body = create_agent(app, alice, ["gmail:read"])
    assert callback(app, consent(body["auth_url"])).status_code == 200
    (grant,) = [row[0] for row in query(app, select(AuthToken))]
    assert app.get("/connections", headers=bob).json() == {"connections": []}
    me = app.get("/connections", headers=alice).json()["connections"]
    assert me[0]["provider"] == "google"
    assert grant.user_id is not None


def test_callback_without_code_or_with_a_bad_code_is_a_400_page(
    app: TestClient, user: Callable[[], dict[str, str]], google_emulator: RunningEmulator
) -> None:
    body = create_agent(app, user(), ["gmail:read"])
    page = app.get("/auth/google/callback", params={"state": _state_of(body["auth_url"])})
    assert page.status_code == 400
    assert "no authorization code" in page.text
    body = create_agent(app, user(), ["gmail:read"])
    page = app.get("/auth/google/callback",
                   params={"state": _state_of(body["auth_url"]), "code": "4/forged"})  # fmt: skip
    assert page.status_code == 400
    assert "invalid_grant" in page.text
    assert query(app, select(AuthToken)) == []


def test_disconnect_revokes_at_google_and_deletes_tokens(
    app: TestClient, user: Callable[[], dict[str, str]], google_emulator: RunningEmulator
) -> None:
    headers = user()
    body = create_agent(app, headers, ["gmail:read"])
    callback(app, consent(body["auth_url"]))
    response = app.delete("/connections/google", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"provider": "google", "revoked": True}
    assert google_emulator.state.hits["revoke"] == 1
    assert google_emulator.state.refresh_tokens == {}
    assert google_emulator.state.access_tokens == {}
    assert query(app, select(AuthToken)) == []
    assert app.delete("/connections/google", headers=headers).status_code == 404


def test_graphql_compile_scopes_connections_and_disconnect(
    app: TestClient, user: Callable[[], dict[str, str]]
) -> None:
    headers = user()
    body = create_agent(app, headers, ["gmail:read", "sheets:read"])
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

    callback(app, consent(body["auth_url"]))
    connections = app.post("/graphql", json={"query": "{ connections { provider health scopes } }"},
                           headers=headers).json()  # fmt: skip
    assert connections["data"]["connections"][0]["health"] == "ok"
    gone = app.post("/graphql", json={"query": 'mutation { disconnect(provider: "google") '
                                               "{ provider revoked } }"}, headers=headers).json()  # fmt: skip
    assert gone["data"]["disconnect"] == {"provider": "google", "revoked": True}
