"""Consent links: `auth_url`s that open pasar's start page, never the provider directly.

A link carries a random `state` (stored only as its SHA-256, single use, expiring after
`STATE_TTL`, bound to the user, agent, provider and requested scopes, with a sealed PKCE
verifier). The start page (`pasar_core.oauth.start`) binds it to the browser of the user it was
made for and sends that browser to the provider; the callback (`pasar_core.oauth.callback`)
takes the state only from that browser.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.oauth import scopes as compiler
from pasar_core.oauth.clients import ProviderClient, provider_client
from pasar_core.oauth.tokens import ACTIVE, state_associated_data
from pasar_core.registry import Registry
from pasar_core.services import Services
from pasar_core.storage.models import AuthToken, OAuthState

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
    """A consent link for `scopes` (pasar's start page); its state row is added to `session`
    (committed with it)."""
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
    return f"{client.start_url}?{urlencode({'state': state})}"


async def authorize_url(
    session: AsyncSession, client: ProviderClient, row: OAuthState, state: str, verifier: str
) -> str:
    """The provider's consent URL for a started state: the tools' scopes plus the provider's
    identity scopes, PKCE S256, and `prompt=consent` only when no refresh token is stored."""
    grant = await _grant(session, row.user_id, client.spec.id)
    has_refresh = grant is not None and grant.status == ACTIVE and grant.refresh_token_enc
    extra = dict(client.spec.authorize_params)
    if not has_refresh:
        extra["prompt"] = "consent"  # the only way to be sure a refresh token comes back
    requested = sorted(set(row.scopes) | set(client.spec.identity_scopes))
    url: str = prepare_grant_uri(
        client.authorize_url,
        client_id=client.client_id,
        response_type="code",
        redirect_uri=row.redirect_uri,
        scope=client.spec.scope_separator.join(requested),
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
    registry: Registry,
    *,
    user_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    tool_ids: Collection[str],
) -> Missing:
    """What the agent's tools need beyond the user's grants; a link per configured provider."""
    plans = compiler.compile_scopes(registry, tool_ids)
    missing: dict[str, frozenset[str]] = {}
    urls: dict[str, str] = {}
    for provider_id, plan in plans.items():
        provider = registry.auth_providers.get(provider_id)
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
