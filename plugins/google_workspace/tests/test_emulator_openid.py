"""The emulator answers `openid email` as Google does: the long scope names in the token
response, and an RS256 ID token naming the consenting account, verifiable with its JWKS."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
from pasar_google_workspace import provider as g
from pasar_google_workspace.emulator.state import USERINFO_EMAIL, account_id
from pasar_google_workspace.testing import CLIENT_ID, CLIENT_SECRET, RunningEmulator

REDIRECT = "http://127.0.0.1:9/callback"


def exchange(running: RunningEmulator, scope: str, **hooks: str) -> dict[str, Any]:
    authorize = httpx.get(
        f"{running.url}/o/oauth2/v2/auth",
        params={"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
                "scope": scope, "state": "s", **hooks},
    )  # fmt: skip
    assert authorize.status_code == 302, authorize.text
    code = parse_qs(urlsplit(authorize.headers["location"]).query)["code"][0]
    token = httpx.post(
        f"{running.url}/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
              "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )  # fmt: skip
    assert token.status_code == 200, token.text
    body: dict[str, Any] = token.json()
    return body


def test_openid_email_gives_a_signed_id_token(google_emulator: RunningEmulator) -> None:
    body = exchange(google_emulator, f"openid email {g.GMAIL_READONLY}", emulator_user="bo@x.test")
    assert set(body["scope"].split()) == {"openid", USERINFO_EMAIL, g.GMAIL_READONLY}
    keys = httpx.get(f"{google_emulator.url}/oauth2/v3/certs").json()
    header = jwt.get_unverified_header(body["id_token"])
    (key,) = [k for k in keys["keys"] if k["kid"] == header["kid"]]
    claims = jwt.decode(
        body["id_token"], jwt.PyJWK(key).key, algorithms=["RS256"], audience=CLIENT_ID,
        issuer="https://accounts.google.com",
    )  # fmt: skip
    assert claims["email"] == "bo@x.test"
    assert claims["email_verified"] is True
    assert claims["sub"] == account_id("bo@x.test")
    assert claims["sub"] != account_id("ada@example.com")


def test_without_openid_there_is_no_id_token(google_emulator: RunningEmulator) -> None:
    body = exchange(google_emulator, g.GMAIL_READONLY)
    assert "id_token" not in body
    only_openid = exchange(google_emulator, f"openid {g.GMAIL_READONLY}")
    assert "email" not in jwt.decode(only_openid["id_token"], options={"verify_signature": False})
