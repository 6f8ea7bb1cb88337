"""The access token a sandboxed plugin's tool gets: narrowed to that tool's scopes, per call.

A grant's own access token covers every scope the user granted (Gmail, Drive, ...); untrusted
code must not hold that. For each call the core refreshes the grant at the provider asking for
only the tool's scopes (RFC 6749 section 6: a refresh may request a subset of the granted
scopes), and hands the container that access token alone: never the refresh token, never the
grant's token. The narrowed token is not stored; it is kept in this process's memory, per
(user, provider, scopes, the core's token for the call: a re-consent changes it), until two
minutes before it expires.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from pasar_core.crypto import DecryptionFailed
from pasar_core.errors import CredentialsUnreadable, OAuthProviderError, ReauthorizationRequired
from pasar_core.oauth.clients import provider_client
from pasar_core.oauth.tokens import open_tokens, refreshed_for_scopes
from pasar_core.services import Services
from pasar_core.specs import OAuthCredentials
from pasar_core.storage.models import AuthToken

MARGIN_S = 120.0
CacheKey = tuple[uuid.UUID, str, frozenset[str], str]
"""(user, provider, scopes, fingerprint of the core's token for the call)"""
DEFAULT_LIFETIME_S = 3600.0


@dataclass(slots=True)
class NarrowedTokens:
    """This process's narrowed access tokens, by `CacheKey`."""

    clock: Any = time.monotonic
    _tokens: dict[CacheKey, tuple[str, float]] = field(default_factory=dict)

    def get(self, key: CacheKey) -> str | None:
        found = self._tokens.get(key)
        if found is None or found[1] <= self.clock():
            self._tokens.pop(key, None)
            return None
        return found[0]

    def put(self, key: CacheKey, token: str, lifetime_s: float) -> None:
        self._tokens[key] = (token, self.clock() + max(0.0, lifetime_s - MARGIN_S))
        if len(self._tokens) > 10_000:
            self._tokens.pop(next(iter(self._tokens)))


async def narrowed_credentials(
    services: Services, cache: NarrowedTokens, user_id: uuid.UUID, granted: OAuthCredentials
) -> OAuthCredentials:
    """`granted` (the core's checked credentials for one tool call) with an access token that
    carries only `granted.scopes`."""
    # the core's token names the grant's current tokens: a re-consent (maybe with another
    # provider account) changes it, so a token narrowed from the old grant is not served
    generation = hashlib.sha256(granted.access_token.encode()).hexdigest()
    key = (user_id, granted.provider, frozenset(granted.scopes), generation)
    token = cache.get(key)
    if token is None:
        token, lifetime = await _refresh_narrowed(services, user_id, granted)
        cache.put(key, token, lifetime)
    return OAuthCredentials(
        provider=granted.provider,
        access_token=token,
        scopes=granted.scopes,
        api_base_url=granted.api_base_url,
    )


async def _refresh_narrowed(
    services: Services, user_id: uuid.UUID, granted: OAuthCredentials
) -> tuple[str, float]:
    provider = granted.provider
    client = provider_client(services, provider)
    if client is None:
        raise OAuthProviderError(f"OAuth for {provider!r} is not configured")
    async with services.sessionmaker() as session:
        row = await session.scalar(
            select(AuthToken).where(AuthToken.user_id == user_id, AuthToken.provider == provider)
        )
    if row is None:
        raise ReauthorizationRequired(provider, f"{provider} is not connected")
    try:
        refresh = open_tokens(services.keyring, row).refresh_token
    except DecryptionFailed:
        raise CredentialsUnreadable(provider, "the stored tokens cannot be decrypted") from None
    if not refresh:
        raise ReauthorizationRequired(provider, "the grant has no refresh token to narrow")
    access, expires_in = await refreshed_for_scopes(client, provider, refresh, granted.scopes)
    return access, expires_in if expires_in is not None else DEFAULT_LIFETIME_S
