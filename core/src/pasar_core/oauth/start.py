"""The start page of a consent link: the person in the browser shows they own the link's pasar
account (its password), the browser gets a secret for an HttpOnly cookie (only the secret's
SHA-256 is stored on the state), and goes on to the provider.

Why the password: a consent link is a URL anyone can forward. Without proof that the browser
belongs to the link's pasar user, a victim opening an attacker's link would connect their own
provider account to the attacker's pasar account. The cookie then keeps the provider's redirect
in the browser that gave the proof: the callback refuses the state anywhere else.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.accounts.passwords import verify_password
from pasar_core.crypto import DecryptionFailed, Sealed
from pasar_core.errors import ConsentStateExpired, ConsentStateInvalid, Unauthenticated
from pasar_core.oauth.clients import ProviderClient, provider_client, require_client
from pasar_core.oauth.consent import MAX_PARAM, authorize_url, hash_state
from pasar_core.oauth.tokens import state_associated_data
from pasar_core.services import Services
from pasar_core.storage.models import OAuthState, User

MAX_PASSWORD = 1024


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RequestedScope:
    scope: str
    description: str


@dataclass(frozen=True, slots=True)
class PendingConsent:
    """What the start page shows: which pasar account the provider account would join."""

    provider: str
    title: str
    account_email: str
    scopes: tuple[RequestedScope, ...]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StartedConsent:
    authorize_url: str = field(repr=False)
    browser_secret: str = field(repr=False)
    """For the browser's cookie; only its hash is stored."""
    expires_at: datetime


def consent_client(services: Services, provider: str) -> ProviderClient:
    """The provider's client; `ConsentStateInvalid` for a provider no plugin offers,
    `OAuthNotConfigured` for one this server has no client for."""
    if provider not in services.registry.auth_providers:
        raise ConsentStateInvalid("This link was made for a provider this server does not know.")
    client = provider_client(services, provider)
    return client if client is not None else require_client(services, provider)


async def live_state(
    session: AsyncSession, provider: str, state: str, *, lock: bool = False
) -> OAuthState:
    """The state's row; `ConsentStateInvalid` (unknown, used, another provider's) or
    `ConsentStateExpired`. Looking does not consume it."""
    if not state or len(state) > MAX_PARAM:
        raise ConsentStateInvalid("This link has no valid state. Start again from pasar.")
    query = select(OAuthState).where(OAuthState.state_hash == hash_state(state))
    row = await session.scalar(query.with_for_update() if lock else query)
    if row is None or row.provider != provider:
        raise ConsentStateInvalid("This link is not valid or was already used.")
    if row.expires_at < datetime.now(UTC):
        raise ConsentStateExpired("This link expired. Start again from pasar.")
    return row


async def _owner(session: AsyncSession, row: OAuthState) -> User:
    user = await session.get(User, row.user_id)
    if user is None:
        raise ConsentStateInvalid("This link is not valid or was already used.")
    return user


async def pending_consent(services: Services, provider: str, state: str) -> PendingConsent:
    client = consent_client(services, provider)
    async with services.sessionmaker() as session:
        row = await live_state(session, provider, state)
        user = await _owner(session, row)
    described = {scope.id: scope.description for scope in client.spec.scopes}
    return PendingConsent(
        provider=provider,
        title=client.spec.title,
        account_email=user.email,
        scopes=tuple(RequestedScope(s, described.get(s, s)) for s in sorted(row.scopes)),
        expires_at=row.expires_at,
    )


async def _check_password(services: Services, user: User, password: str, source: str) -> None:
    """The same throttle as `POST /auth/token`: guessing here counts there too."""
    attempt = await services.login_throttle.reserve(user.email, source)
    if len(password) > MAX_PASSWORD or not await verify_password(user.password_hash, password):
        raise Unauthenticated("wrong password for this pasar account")
    await attempt.succeeded()


async def start_consent(
    services: Services, provider: str, state: str, password: str, source: str
) -> StartedConsent:
    """Check the password of the state's user, bind the state to a new browser secret (a
    later start by the same user re-binds it), and return the provider's consent URL."""
    client = consent_client(services, provider)
    async with services.sessionmaker() as session:
        user = await _owner(session, await live_state(session, provider, state))
    await _check_password(services, user, password, source)  # slow: outside any transaction
    secret = secrets.token_urlsafe(32)
    async with services.sessionmaker.begin() as session:
        row = await live_state(session, provider, state, lock=True)
        try:
            verifier = services.keyring.open_text(
                Sealed(row.key_id, row.code_verifier_enc), state_associated_data(row)
            )
        except DecryptionFailed:
            raise ConsentStateInvalid("This link can no longer be verified. Start again.") from None
        row.browser_hash = hash_secret(secret)
        url = await authorize_url(session, client, row, state, verifier)
        expires_at = row.expires_at
    return StartedConsent(authorize_url=url, browser_secret=secret, expires_at=expires_at)
