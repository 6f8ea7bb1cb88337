"""Calls to Google's REST APIs with the credentials the core checked, and Google's errors mapped
to what the agent's model should read."""

from __future__ import annotations

from collections.abc import Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import quote

import httpx
from pasar_core.errors import ReauthorizationRequired, ToolError
from pasar_core.net.tls import verifying_context
from pasar_core.specs import ToolContext

GMAIL = "https://gmail.googleapis.com"
DOCS = "https://docs.googleapis.com"
SHEETS = "https://sheets.googleapis.com"
WWW = "https://www.googleapis.com"  # Calendar and Drive

TIMEOUT_S = 20.0
HTTP_CLIENT_EXTRA = "google_workspace.http_client"
"""`ctx.extras` key of the HTTP client the plugin's `startup` hook opens for every Google call of
the process (connections kept alive); absent (a tool called outside a server), a call opens its
own."""
ID_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,200}$"}


def build_http_client() -> httpx.AsyncClient:
    """A client that never stores cookies: one client serves every user's calls, so a cookie
    set in answer to one user's request must never ride along with another user's."""
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(timeout=TIMEOUT_S, cookies=no_cookies, verify=verifying_context())


def seg(value: str) -> str:
    """One URL path segment, escaped (ids never become paths)."""
    return quote(value, safe="")


def _google_error(response: httpx.Response) -> tuple[str, str]:
    """(reason, message) from Google's error body `{"error": {"errors": [{"reason"}]}}`."""
    try:
        error = response.json().get("error", {})
    except ValueError:
        return "", response.text[:200]
    if not isinstance(error, dict):
        return str(error), ""
    reasons = [e.get("reason", "") for e in error.get("errors", []) if isinstance(e, dict)]
    return (reasons[0] if reasons else str(error.get("status", ""))), str(error.get("message", ""))


async def call(
    ctx: ToolContext,
    method: str,
    host: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    body: Any = None,
) -> dict[str, Any]:
    """`method host+path` with the bearer token of `ctx.oauth`; a JSON object back."""
    creds = ctx.oauth
    if creds is None or creds.provider != "google":
        raise ReauthorizationRequired("google", "this tool call has no Google credentials")
    url = (creds.api_base_url.rstrip("/") if creds.api_base_url else host) + path
    headers = {"Authorization": f"Bearer {creds.access_token}", "Accept": "application/json"}
    query = {k: v for k, v in (params or {}).items() if v is not None}
    shared = ctx.extras.get(HTTP_CLIENT_EXTRA)
    try:
        if isinstance(shared, httpx.AsyncClient):
            response = await shared.request(method, url, params=query, json=body, headers=headers)
        else:
            async with build_http_client() as client:
                response = await client.request(
                    method, url, params=query, json=body, headers=headers
                )
    except httpx.HTTPError as error:
        raise ToolError(f"Google could not be reached ({type(error).__name__})") from None
    if response.is_success:
        data = response.json() if response.content else {}
        return data if isinstance(data, dict) else {"value": data}
    reason, message = _google_error(response)
    status = response.status_code
    if status == 401:
        raise ReauthorizationRequired("google", "Google rejected the access token")
    if status == 403 and reason in ("insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"):
        raise ReauthorizationRequired("google", "the Google grant lacks a scope this tool needs")
    if status == 429 or reason in ("rateLimitExceeded", "userRateLimitExceeded"):
        retry_after = response.headers.get("retry-after")
        raise ToolError(
            f"Google rate limit reached; retry after {retry_after or 'a while'} s",
            details={"retry_after": int(retry_after) if (retry_after or "").isdigit() else None},
        )
    if status == 404:
        raise ToolError(f"not found at Google: {message or path}")
    if status >= 500:
        raise ToolError(f"Google failed ({status}); try again later")
    raise ToolError(f"Google refused the request ({status} {reason}): {message}"[:500])
