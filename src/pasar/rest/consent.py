"""The browser side of OAuth consent.

- `GET /auth/{provider}/start?state=...` (every `auth_url`): names the pasar account the link
  was made for and asks its password (the form carries a token that must match a SameSite=Strict
  cookie, so another site cannot submit it).
- `POST /auth/{provider}/start`: checks the password, sets an HttpOnly, SameSite=Lax cookie
  (Secure on https) with a secret bound to the state, and redirects (303) to the provider.
- `GET /auth/{provider}/callback`: completes the consent only with that cookie.
"""

from __future__ import annotations

import hmac
import math
import secrets
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from pasar_core.accounts.throttle import TooManyAttempts
from pasar_core.errors import BadRequest, Forbidden, PasarError, PayloadTooLarge, Unauthenticated
from pasar_core.executions.authorization import resume_awaiting
from pasar_core.oauth.callback import complete_consent
from pasar_core.oauth.clients import ProviderClient, provider_client
from pasar_core.oauth.consent import MAX_PARAM, hash_state
from pasar_core.oauth.start import consent_client, pending_consent, start_consent
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pasar.rest import consent_pages as pages
from pasar.rest.requests import UnsupportedMediaType, runs_of, services_of, source_of

CALLBACK_PARAMS = ("code", "state", "error", "scope")
FORM_LIMIT = 16_384
FORM_FIELDS = ("state", "form_token", "password")


class ConsentFormRefused(Forbidden):
    """The start form came without its cookie, with another token, or from another site."""

    code = "CONSENT_FORM_REFUSED"


def binding_cookie(state: str) -> str:
    return f"pasar_consent_{hash_state(state)[:16]}"


def form_cookie(state: str) -> str:
    return f"pasar_consent_form_{hash_state(state)[:16]}"


def _provider(request: Request) -> str:
    provider: str = request.path_params["provider"]
    return provider[:100]


def _refused(error: PasarError) -> Response:
    headers = dict(pages.PAGE_HEADERS)
    if isinstance(error, TooManyAttempts):
        headers["Retry-After"] = str(error.retry_after_s)
    return HTMLResponse(pages.refused_page(error), status_code=error.status, headers=headers)


def _set_cookie(
    response: Response,
    name: str,
    value: str,
    *,
    url: str,
    expires_at: datetime,
    samesite: Literal["lax", "strict"],
) -> None:
    """An HttpOnly cookie scoped to `url`'s path, Secure when `url` is https, living as long as
    the state does."""
    parts = urlsplit(url)
    remaining = (expires_at - datetime.now(UTC)).total_seconds()
    response.set_cookie(
        name, value, max_age=max(1, math.ceil(remaining)), path=parts.path or "/",
        secure=parts.scheme == "https", httponly=True, samesite=samesite,
    )  # fmt: skip


async def _read_form(request: Request) -> dict[str, str]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("send the form as application/x-www-form-urlencoded")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise PayloadTooLarge(f"the form is larger than {FORM_LIMIT} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the form is not valid") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in FORM_FIELDS:
            form.setdefault(key, value)
    return form


def _form_response(
    client: ProviderClient, page: str, state: str, token: str, expires_at: datetime, status: int
) -> Response:
    response = HTMLResponse(page, status_code=status, headers=pages.PAGE_HEADERS)
    _set_cookie(response, form_cookie(state), token, url=client.start_url,
                expires_at=expires_at, samesite="strict")  # fmt: skip
    return response


async def start_page(request: Request) -> Response:
    """The sign-in page every consent link opens."""
    services, provider = services_of(request), _provider(request)
    state = request.query_params.get("state", "")
    try:
        client = consent_client(services, provider)
        pending = await pending_consent(services, provider, state)
    except PasarError as error:
        return _refused(error)
    token = secrets.token_urlsafe(32)
    page = pages.start_page(pending, state, token)
    return _form_response(client, page, state, token, pending.expires_at, 200)


async def start(request: Request) -> Response:
    """The sign-in form's answer: on the right password, bind this browser and go on."""
    services, provider = services_of(request), _provider(request)
    try:
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise ConsentFormRefused("This form was sent from another site.")
        form = await _read_form(request)
        state = form.get("state", "")[:MAX_PARAM]
        client = consent_client(services, provider)
        pending = await pending_consent(services, provider, state)
        token = form.get("form_token", "")
        cookie = request.cookies.get(form_cookie(state), "")
        if not cookie or not hmac.compare_digest(cookie.encode(), token.encode()):
            raise ConsentFormRefused("This form expired or was not sent from its page. Reload it.")
    except PasarError as error:
        return _refused(error)
    try:
        started = await start_consent(
            services, provider, state, form.get("password", ""), source_of(request)
        )
    except Unauthenticated as wrong:
        page = pages.start_page(pending, state, token, problem=wrong.message)
        return _form_response(client, page, state, token, pending.expires_at, wrong.status)
    except PasarError as error:
        return _refused(error)
    response = RedirectResponse(started.authorize_url, status_code=303, headers=pages.PAGE_HEADERS)
    _set_cookie(response, binding_cookie(state), started.browser_secret,
                url=client.redirect_uri, expires_at=started.expires_at, samesite="lax")  # fmt: skip
    start_path = urlsplit(client.start_url).path or "/"
    response.delete_cookie(form_cookie(state), path=start_path, httponly=True, samesite="strict")
    return response


async def callback(request: Request) -> Response:
    """Exchange the code (only after the state and this browser checked out); an HTML page."""
    params = {k: request.query_params[k] for k in CALLBACK_PARAMS if k in request.query_params}
    services, provider = services_of(request), _provider(request)
    state = params.get("state", "")
    name = binding_cookie(state) if state and len(state) <= MAX_PARAM else None
    secret = request.cookies.get(name) if name else None
    response: Response
    try:
        outcome = await complete_consent(
            services, provider, params, secret, source=source_of(request)
        )
    except PasarError as error:
        response = _refused(error)
    else:
        if outcome.agent_id is not None:
            await resume_awaiting(runs_of(request), outcome.agent_id)
        response = HTMLResponse(pages.connected_page(outcome), headers=pages.PAGE_HEADERS)
    if name and secret is not None:  # spent or useless from here on
        client = provider_client(services, provider)
        path = urlsplit(client.redirect_uri).path if client else request.url.path
        response.delete_cookie(name, path=path, httponly=True, samesite="lax")
    return response
