"""Access tokens for one agent's scopes: a grant covers every scope its user granted (for all
their agents), but a tool call of one agent gets a token for that agent's compiled scopes only,
when the provider mints one (`AuthProviderSpec.narrows_on_refresh`; Google accepts a `scope`
subset on the refresh grant, RFC 6749 section 6).

The token is minted from the grant's refresh token asking for the agent's scopes (each as the
grant holds it: a granted broader scope that covers a needed one is asked as granted), kept in
`narrowed_tokens` encrypted with the server's keyring (associated data binds it to its grant
and scope set), and minted again within `REFRESH_BEFORE` of its expiry or when it no longer
decrypts. When the agent's scopes already are all the grant's scopes (identity scopes aside,
and counting granted scopes no tool declares), the grant's own token is used as it is. A
re-consent, a grant marked `needs_reauth` and a disconnect drop the grant's narrowed tokens
(`pasar_core.oauth.tokens.drop_narrowed`); a token minted while the grant's tokens were being
replaced is not stored. A provider that refuses a narrowed token fails the call
(`OAUTH_PROVIDER_ERROR`): the broader token is never handed out instead.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.crypto import DecryptionFailed, Sealed
from pasar_core.errors import CredentialsUnreadable, ReauthorizationRequired
from pasar_core.oauth import scopes as compiler
from pasar_core.oauth.clients import require_client
from pasar_core.oauth.tokens import ACTIVE, REFRESH_BEFORE, open_tokens, refreshed_for_scopes
from pasar_core.services import Services
from pasar_core.specs import AuthProviderSpec
from pasar_core.storage.models import AuthToken, NarrowedToken

DEFAULT_LIFETIME = timedelta(hours=1)
# OpenID Connect's scopes name the account, reaching no API; Google answers the short names in
# their long form.
IDENTITY_SCOPES = frozenset({
    "openid", "email", "profile",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
})  # fmt: skip


def requested_scopes(
    provider: AuthProviderSpec, granted: Iterable[str], needed: Iterable[str]
) -> frozenset[str] | None:
    """The granted scopes to ask a narrowed token for, so it covers `needed` (the agent's
    compiled scopes): never a scope the grant lacks. None when that is every scope of the
    grant but its identity scopes (nothing to narrow)."""
    have = frozenset(granted)
    asked: set[str] = set()
    for scope in needed:
        if scope in have:
            asked.add(scope)
        else:
            asked.update(g for g in have if not compiler.uncovered(provider, [g], [scope]))
    identity = IDENTITY_SCOPES | frozenset(provider.identity_scopes)
    # every granted scope counts, listed in `provider.scopes` or not (include_granted_scopes
    # can bring in any scope another app of the same client was granted)
    if not have - identity - asked:
        return None
    return frozenset(asked)


def scopes_key(scopes: Iterable[str]) -> str:
    return hashlib.sha256(" ".join(sorted(scopes)).encode()).hexdigest()


def _associated_data(grant_id: uuid.UUID, key: str) -> str:
    return f"oauth-narrowed|{grant_id}|{key}"


async def narrowed_access_token(
    services: Services,
    provider: AuthProviderSpec,
    user_id: uuid.UUID,
    needed: Iterable[str],
) -> str | None:
    """A token of the user's grant for `needed` alone (None: the grant's own token already is
    one: no other API scope was granted)."""
    async with services.sessionmaker() as session:
        grant = await session.scalar(
            select(AuthToken).where(AuthToken.user_id == user_id, AuthToken.provider == provider.id)
        )
        if grant is None or grant.status != ACTIVE:
            raise ReauthorizationRequired(provider.id, f"{provider.id} is not connected")
        asked = requested_scopes(provider, grant.scopes, needed)
        if asked is None:
            return None
        key = scopes_key(asked)
        cached = await session.get(NarrowedToken, (grant.id, key))
    if cached is not None and cached.expires_at - REFRESH_BEFORE > datetime.now(UTC):
        try:
            return services.keyring.open_text(
                Sealed(cached.key_id, cached.access_token_enc), _associated_data(grant.id, key)
            )
        except DecryptionFailed:
            pass  # a retired key or a moved row: mint a new one
    return await _mint(services, grant, asked, key)


async def _mint(services: Services, grant: AuthToken, asked: frozenset[str], key: str) -> str:
    provider = grant.provider
    if not asked:  # an empty `scope` would be a token for the whole grant
        raise ReauthorizationRequired(provider, "the grant lacks the scopes this agent needs")
    client = require_client(services, provider)
    try:
        refresh = open_tokens(services.keyring, grant).refresh_token
    except DecryptionFailed:
        raise CredentialsUnreadable(provider, "the stored tokens cannot be decrypted") from None
    if not refresh:
        raise ReauthorizationRequired(provider, "the grant has no refresh token to narrow")
    access, expires_in = await refreshed_for_scopes(client, provider, refresh, asked)
    lifetime = timedelta(seconds=expires_in) if expires_in is not None else DEFAULT_LIFETIME
    sealed = services.keyring.seal_text(access, _associated_data(grant.id, key))
    values = {
        "grant_id": grant.id, "scopes_key": key, "scopes": sorted(asked),
        "access_token_enc": sealed.blob, "key_id": sealed.key_id,
        "expires_at": datetime.now(UTC) + lifetime,
    }  # fmt: skip
    statement = insert(NarrowedToken).values(values)
    async with services.sessionmaker.begin() as session:
        if not await _still_minted_from(session, services, grant, refresh):
            return access  # the grant was reconnected or refused meanwhile: not kept for later
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[NarrowedToken.grant_id, NarrowedToken.scopes_key],
                set_={
                    c: statement.excluded[c]
                    for c in ("scopes", "access_token_enc", "key_id", "expires_at")
                },
            )
        )
    return access


async def _still_minted_from(
    session: AsyncSession, services: Services, grant: AuthToken, refresh: str
) -> bool:
    """Whether the grant, share-locked against a re-consent until the session ends, still is
    active with the refresh token a narrowed token was just minted from."""
    current = await session.scalar(
        select(AuthToken).where(AuthToken.id == grant.id).with_for_update(read=True)
    )
    if current is None or current.status != ACTIVE:
        return False
    try:
        return open_tokens(services.keyring, current).refresh_token == refresh
    except DecryptionFailed:
        return False
