"""Consent links and the callback.

A link carries a random `state` (stored only as its SHA-256, single use, expiring after
`STATE_TTL`, bound to the user, agent, provider and requested scopes) and a PKCE S256 challenge
whose verifier is stored sealed. The callback consumes the state before anything else, so a
forged, reused, expired or foreign state never reaches the provider's token endpoint.
"""

from __future__ import annotations

import hashlib
import html
import logging
import secrets
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx2
from authlib.integrations.httpx_client import OAuthError  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.crypto import DecryptionFailed, Sealed
from pasar_core.oauth import scopes as compiler
from pasar_core.oauth.clients import ProviderClient, provider_client
from pasar_core.oauth.tokens import ACTIVE, oauth_client, state_associated_data, store_grant
from pasar_core.services import Services
from pasar_core.storage.models import AgentTool, AuthToken, OAuthState

log = logging.getLogger("pasar.oauth")

STATE_TTL = timedelta(minutes=10)
MAX_PARAM = 2048


def hash_state(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


async def _grant(session: AsyncSession, user_id: uuid.UUID, provider: str) -> AuthToken | None:
    return await session.scalar(
        select(AuthToken).where(AuthToken.user_id == user_id, AuthToken.provider == provider)
    )


async def consent_url(
    session: AsyncSession,
    services: Services,
    client: ProviderClient,
    *,
    user_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    scopes: Collection[str],
) -> str:
    """A consent link for `scopes`; its state row is added to `session` (committed with it)."""
    grant = await _grant(session, user_id, client.spec.id)
    has_refresh = grant is not None and grant.status == ACTIVE and grant.refresh_token_enc
    state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    row = OAuthState(
        id=uuid.uuid4(),
        state_hash=hash_state(state),
        user_id=user_id,
        agent_id=agent_id,
        provider=client.spec.id,
        scopes=sorted(scopes),
        redirect_uri=client.redirect_uri,
        expires_at=datetime.now(UTC) + STATE_TTL,
    )
    sealed = services.keyring.seal_text(verifier, state_associated_data(row))
    row.key_id, row.code_verifier_enc = sealed.key_id, sealed.blob
    session.add(row)
    extra = dict(client.spec.authorize_params)
    if not has_refresh:
        extra["prompt"] = "consent"  # the only way to be sure a refresh token comes back
    url: str = prepare_grant_uri(
        client.authorize_url,
        client_id=client.client_id,
        response_type="code",
        redirect_uri=client.redirect_uri,
        scope=client.spec.scope_separator.join(sorted(scopes)),
        state=state,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
        **extra,
    )
    return url


@dataclass(frozen=True, slots=True)
class Missing:
    """Scopes an agent's tools need that the user's grants do not cover, and a consent link."""

    missing: Mapping[str, frozenset[str]]
    auth_url: str | None = None
    auth_urls: Mapping[str, str] = field(default_factory=dict)


async def missing_scopes(
    session: AsyncSession,
    services: Services,
    *,
    user_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    tool_ids: Collection[str],
) -> Missing:
    """What the agent's tools need beyond the user's grants; a link per configured provider."""
    plans = compiler.compile_scopes(services.registry, tool_ids)
    missing: dict[str, frozenset[str]] = {}
    urls: dict[str, str] = {}
    for provider_id, plan in plans.items():
        provider = services.registry.auth_providers.get(provider_id)
        grant = await _grant(session, user_id, provider_id)
        granted = grant.scopes if grant is not None and grant.status == ACTIVE else []
        lacking = compiler.uncovered(provider, granted, plan.scope_ids)
        if not lacking:
            continue
        missing[provider_id] = lacking
        client = provider_client(services, provider_id)
        if client is not None:
            urls[provider_id] = await consent_url(
                session, services, client, user_id=user_id, agent_id=agent_id, scopes=lacking
            )
    first = next((urls[p] for p in sorted(urls)), None)
    return Missing(missing=missing, auth_url=first, auth_urls=urls)


@dataclass(frozen=True, slots=True)
class ConsentOutcome:
    """What the callback page says; `status` is its HTTP status."""

    ok: bool
    status: int
    title: str
    message: str
    provider: str
    granted: tuple[str, ...] = ()
    still_missing: tuple[str, ...] = ()
    agent_id: uuid.UUID | None = None


def _refused(provider: str, status: int, message: str) -> ConsentOutcome:
    return ConsentOutcome(False, status, "Not connected", message, provider)


async def _consume(session: AsyncSession, state: str) -> OAuthState | None:
    """Delete and return the state row: a state works once, even under concurrent callbacks."""
    row = await session.scalar(
        select(OAuthState).where(OAuthState.state_hash == hash_state(state)).with_for_update()
    )
    if row is not None:
        await session.execute(delete(OAuthState).where(OAuthState.id == row.id))
    return row


async def complete_consent(
    services: Services, provider: str, params: Mapping[str, str]
) -> ConsentOutcome:
    """Handle `GET /auth/{provider}/callback?code&state` (or `?error&state`)."""
    state = params.get("state", "")
    if not state or len(state) > MAX_PARAM:
        return _refused(provider, 400, "The link has no valid state. Start again from pasar.")
    async with services.sessionmaker.begin() as session:
        row = await _consume(session, state)
    if row is None:
        return _refused(provider, 400, "This link is not valid or was already used.")
    if row.provider != provider:
        return _refused(provider, 400, "This link was made for another provider.")
    if row.expires_at < datetime.now(UTC):
        return _refused(provider, 400, "This link expired. Start again from pasar.")
    error = params.get("error")
    if error:
        message = (
            "You did not grant access."
            if error == "access_denied"
            else (f"{provider} reported an error: {error[:100]}")
        )
        return _refused(provider, 400, message)
    code = params.get("code", "")
    if not code or len(code) > MAX_PARAM:
        return _refused(provider, 400, "The provider sent no authorization code.")
    client = provider_client(services, provider)
    if client is None:
        return _refused(provider, 503, f"OAuth for {provider} is not configured on this server.")
    try:
        verifier = services.keyring.open_text(
            Sealed(row.key_id, row.code_verifier_enc), state_associated_data(row)
        )
    except DecryptionFailed:
        return _refused(provider, 400, "This link can no longer be verified. Start again.")
    try:
        async with oauth_client(client) as oauth:
            token = await oauth.fetch_token(
                client.token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=verifier,
                redirect_uri=row.redirect_uri,
            )
    except OAuthError as failure:
        return _refused(provider, 400, f"{provider} refused the code ({failure.error}).")
    except (httpx2.HTTPError, ValueError) as failure:
        log.warning("token exchange with %s failed: %s", provider, type(failure).__name__)
        return _refused(provider, 502, f"{provider} could not be reached. Try again.")
    scope = token.get("scope")
    granted = (
        frozenset(scope.split()) if isinstance(scope, str) and scope else frozenset(row.scopes)
    )
    await store_grant(
        services, user_id=row.user_id, provider=provider, token=token, granted=granted
    )
    still_missing = compiler.uncovered(
        services.registry.auth_providers.get(provider), granted, row.scopes
    )
    if row.agent_id is not None:
        async with services.sessionmaker() as session:
            tool_ids = list(
                await session.scalars(
                    select(AgentTool.tool_id).where(AgentTool.agent_id == row.agent_id)
                )
            )
        plan = compiler.compile_scopes(
            services.registry, [t for t in tool_ids if t in services.registry.tools]
        ).get(provider)
        if plan is not None:
            still_missing = compiler.uncovered(
                services.registry.auth_providers.get(provider), granted, plan.scope_ids
            )
    message = (
        "Connected. You can close this page."
        if not still_missing
        else "Connected, but some permissions were not granted; the tools that need them stay "
        "disabled until you grant them."
    )
    return ConsentOutcome(
        True,
        200,
        f"{client.spec.title} connected",
        message,
        provider,
        tuple(sorted(granted)),
        tuple(sorted(still_missing)),
        row.agent_id,
    )


def outcome_page(outcome: ConsentOutcome) -> str:
    """A small self-contained HTML page (no scripts, nothing external)."""
    items = "".join(f"<li><code>{html.escape(s)}</code></li>" for s in outcome.granted)
    lacking = "".join(f"<li><code>{html.escape(s)}</code></li>" for s in outcome.still_missing)
    parts = [
        "<!doctype html><html lang=en><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(outcome.title)} - pasar</title>",
        "<style>body{font:16px system-ui,sans-serif;max-width:40rem;margin:3rem auto;"
        "padding:0 1rem}h1{font-size:1.4rem}.err{color:#a40000}</style>",
        f"<h1 class={'ok' if outcome.ok else 'err'}>{html.escape(outcome.title)}</h1>",
        f"<p>{html.escape(outcome.message)}</p>",
    ]
    if items:
        parts.append(f"<p>Granted:</p><ul>{items}</ul>")
    if lacking:
        parts.append(f"<p>Not granted:</p><ul>{lacking}</ul>")
    return "".join(parts) + "</html>"
