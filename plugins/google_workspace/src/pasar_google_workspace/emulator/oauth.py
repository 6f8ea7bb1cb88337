"""The emulator's OAuth 2.0 endpoints: authorize (auto-consent, or a consent page), token
(authorization_code with PKCE, refresh_token) and revoke, answering as Google does."""

from __future__ import annotations

import base64
import html
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from pasar_google_workspace.emulator.state import (
    IDENTITY_SCOPES,
    SCOPE_ALIASES,
    SCOPE_IDS,
    Code,
    EmulatorState,
    canonical_scopes,
    s256,
)

AUTHORIZE_PATH = "/o/oauth2/v2/auth"


async def form_pairs(request: Request) -> list[tuple[str, str]]:
    """An `application/x-www-form-urlencoded` body (no multipart: Google's endpoints take none)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qsl(body, keep_blank_values=True)


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _error_page(error: str, description: str) -> HTMLResponse:
    body = (
        "<!doctype html><title>Error 400</title><h1>Access blocked: authorization error</h1>"
        f"<p>Error 400: {html.escape(error)}</p><p>{html.escape(description)}</p>"
    )
    return HTMLResponse(body, status_code=400)


def _token_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _redirect(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(params), status_code=302)


async def authorize(request: Request) -> Response:
    """GET: check the request, then consent at once (auto) or show a consent page.
    POST: the consent page's answer. Test hooks: `emulator_deny=1`, `emulator_untick=<scopes>`,
    `emulator_user=<email>` (consent as that Google account instead of `user_email`)."""
    emulator = _state(request)
    params = dict(request.query_params)
    if request.method == "POST":
        pairs = await form_pairs(request)
        params = {k: v for k, v in pairs if k != "scope_granted"}
        granted = {v for k, v in pairs if k == "scope_granted"}
        asked = canonical_scopes(params.get("scope", "").split()) - IDENTITY_SCOPES
        params["emulator_untick"] = " ".join(asked - canonical_scopes(granted))
        if params.pop("decision", "") != "allow":
            params["emulator_deny"] = "1"
    client_id = params.get("client_id", "")
    redirect_uri = params.get("redirect_uri", "")
    if not client_id or (emulator.clients is not None and client_id not in emulator.clients):
        return _error_page("invalid_client", "The OAuth client was not found.")
    if not redirect_uri.startswith(("http://", "https://")):
        return _error_page("redirect_uri_mismatch", "The redirect URI is not registered.")
    if params.get("response_type") != "code":
        return _error_page("unsupported_response_type", "Only response_type=code is supported.")
    requested = params.get("scope", "").split()
    unknown = [scope for scope in requested if scope not in SCOPE_IDS]
    if not requested or unknown:
        return _error_page("invalid_scope", f"Some requested scopes were invalid: {unknown}")
    method = params.get("code_challenge_method")
    if params.get("code_challenge") and method != "S256":
        return _error_page("invalid_request", "code_challenge_method must be S256.")
    state = params.get("state", "")
    if request.method == "GET" and not emulator.auto_consent:
        return _consent_page(emulator, params, requested)
    if params.get("emulator_deny"):
        return _redirect(redirect_uri, {"error": "access_denied", "state": state})
    unticked = canonical_scopes(params.get("emulator_untick", "").replace(",", " ").split())
    granted = canonical_scopes(requested) - unticked
    if not granted:
        return _redirect(redirect_uri, {"error": "access_denied", "state": state})
    with emulator.lock:
        if params.get("include_granted_scopes") == "true":
            granted |= emulator.grants.get(client_id, set())
        emulator.grants[client_id] = set(granted)
        had_refresh = client_id in emulator.refresh_issued
    code = emulator.new_code(
        Code(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=frozenset(granted),
            challenge=params.get("code_challenge"),
            challenge_method=method,
            offline=params.get("access_type") == "offline",
            force_refresh_token=params.get("prompt") == "consent" or not had_refresh,
            expires_at=time.time() + emulator.code_ttl_s,
            account=params.get("emulator_user") or emulator.user_email,
        )
    )
    emulator.hits["authorize"] += 1
    return _redirect(
        redirect_uri,
        {"state": state, "code": code, "scope": " ".join(sorted(granted)), "authuser": "0"},
    )


def _consent_page(emulator: EmulatorState, params: dict[str, str], scopes: list[str]) -> Response:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
        if not k.startswith("emulator_")
    )
    boxes = "".join(
        f'<li><label><input type="checkbox" name="scope_granted" value="{html.escape(s)}" '
        f"checked> {html.escape(s)}</label></li>"
        for s in scopes
        if SCOPE_ALIASES.get(s, s) not in IDENTITY_SCOPES  # always granted, as at Google
    )
    body = (
        "<!doctype html><meta charset=utf-8><title>Sign in - Google Accounts (emulator)</title>"
        f"<h1>pasar's Google emulator</h1><p>Signed in as {html.escape(emulator.user_email)}."
        f" The app wants:</p><form method=post><ul>{boxes}</ul>{hidden}"
        "<button name=decision value=deny>Cancel</button> "
        "<button name=decision value=allow>Allow</button></form>"
    )
    return HTMLResponse(body)


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:]).decode("latin-1")
        except ValueError:
            return "", ""
        client_id, _, secret = decoded.partition(":")
        return unquote(client_id), unquote(secret)
    return form.get("client_id", ""), form.get("client_secret", "")


async def token(request: Request) -> Response:
    emulator = _state(request)
    form = dict(await form_pairs(request))
    client_id, secret = _client_credentials(request, form)
    known = emulator.clients
    if not client_id or (known is not None and known.get(client_id) != secret):
        return _token_error("invalid_client", "The OAuth client was not found.", 401)
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        emulator.hits["token:authorization_code"] += 1
        with emulator.lock:
            code = emulator.codes.pop(form.get("code", ""), None)
        if code is None or code.client_id != client_id:
            return _token_error("invalid_grant", "Malformed auth code.")
        if code.expires_at < time.time():
            return _token_error("invalid_grant", "Bad Request")
        if form.get("redirect_uri") != code.redirect_uri:
            return _token_error("redirect_uri_mismatch", "Bad Request")
        if code.challenge:
            verifier = form.get("code_verifier")
            if not verifier:
                return _token_error("invalid_grant", "Missing code verifier.")
            if s256(verifier) != code.challenge:
                return _token_error("invalid_grant", "Invalid code verifier.")
        return JSONResponse(
            emulator.issue(
                client_id,
                code.scopes,
                with_refresh=code.offline and code.force_refresh_token,
                account=code.account,
                with_id_token=True,
            ),
            headers={"Cache-Control": "no-store"},
        )
    if grant_type == "refresh_token":
        emulator.hits["token:refresh_token"] += 1
        with emulator.lock:
            stored = emulator.refresh_tokens.get(form.get("refresh_token", ""))
        if stored is None or stored.client_id != client_id:
            return _token_error("invalid_grant", "Token has been expired or revoked.")
        scopes = stored.scopes
        if form.get("scope"):
            # a subset of the grant (RFC 6749 section 6): the token is valid for it alone
            narrowed = frozenset(canonical_scopes(form["scope"].split()))
            if not narrowed <= scopes:
                return _token_error("invalid_scope", "Some requested scopes were invalid.")
            scopes = narrowed
        return JSONResponse(
            emulator.issue(client_id, scopes, with_refresh=False, account=stored.account),
            headers={"Cache-Control": "no-store"},
        )
    return _token_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")


async def certs(request: Request) -> Response:
    """The public keys of the ID tokens' signatures (JWKS)."""
    return JSONResponse(_state(request).jwks())


async def revoke(request: Request) -> Response:
    emulator = _state(request)
    emulator.hits["revoke"] += 1
    form = dict(await form_pairs(request))
    value = form.get("token") or request.query_params.get("token", "")
    with emulator.lock:
        found = emulator.access_tokens.get(value) or emulator.refresh_tokens.get(value)
    if found is None:
        return _token_error("invalid_token", "Token expired or revoked")
    emulator.revoke_grant(found.client_id)
    return JSONResponse({})


def new_id() -> str:
    return secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


def query_params(request: Request) -> dict[str, Any]:
    return dict(request.query_params)
