"""Token custody: OAuth tokens sealed with the keyring (AES-256-GCM, a key id per row,
associated data binding user, provider and token kind), refresh, revocation, key rotation.

Refresh is single-flight per grant across processes: the refresher holds the grant's row lock
(`SELECT ... FOR UPDATE`) while it calls the provider, and every other caller waits on that lock,
then finds a fresh token and does not refresh again. `invalid_grant` marks the grant
`needs_reauth` (committed) and is never retried: later callers fail at once without a request.
Tokens that fail to decrypt (the row was changed, copied from another user, or sealed with a
key this server no longer has) do the same, with `CredentialsUnreadable`: the user reconnects.
A stored refresh token is never replaced by an empty one (providers omit it on refresh and on
repeated consent) unless the consent came from another provider account. Every consent, a
grant marked `needs_reauth` and a disconnect drop the grant's narrowed tokens.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
    AsyncOAuth2Client,
    OAuthError,
)
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.audit import record as audit
from pasar_core.audit.record import Action, Actor
from pasar_core.crypto import DecryptionFailed, Keyring, Sealed
from pasar_core.errors import (
    CredentialsUnreadable,
    NotFound,
    OAuthProviderError,
    ReauthorizationRequired,
)
from pasar_core.oauth.clients import TIMEOUT_S, ProviderClient, provider_client, require_client
from pasar_core.oauth.identity import ProviderAccount
from pasar_core.services import Services
from pasar_core.storage.models import AuthToken, NarrowedToken, OAuthState

log = logging.getLogger("pasar.oauth")

REFRESH_BEFORE = timedelta(seconds=120)
ACTIVE, NEEDS_REAUTH = "active", "needs_reauth"
UNREADABLE = (
    "the stored tokens cannot be decrypted (changed in the database, copied from another "
    "account, or sealed with a key this server no longer has); connect again"
)


def associated_data(user_id: uuid.UUID, provider: str, kind: str) -> str:
    return f"oauth-token|{user_id}|{provider}|{kind}"


@dataclass(frozen=True, slots=True)
class GrantTokens:
    access_token: str | None
    refresh_token: str | None

    def __repr__(self) -> str:
        return "GrantTokens(...)"


def open_tokens(keyring: Keyring, row: AuthToken) -> GrantTokens:
    """Decrypt a row's tokens; `DecryptionFailed` when tampered, moved or the key is gone."""

    def one(blob: bytes | None, kind: str) -> str | None:
        if blob is None:
            return None
        if row.key_id is None:
            raise DecryptionFailed("stored token has no key id")
        sealed = Sealed(row.key_id, blob)
        return keyring.open_text(sealed, associated_data(row.user_id, row.provider, kind))

    return GrantTokens(one(row.access_token_enc, "access"), one(row.refresh_token_enc, "refresh"))


def seal_tokens(keyring: Keyring, row: AuthToken, tokens: GrantTokens) -> None:
    """Seal both tokens with the active key (one key id per row)."""

    def one(value: str | None, kind: str) -> bytes | None:
        if not value:
            return None
        ad = associated_data(row.user_id, row.provider, kind)
        return keyring.seal_text(value, ad).blob

    row.access_token_enc = one(tokens.access_token, "access")
    row.refresh_token_enc = one(tokens.refresh_token, "refresh")
    row.key_id = keyring.active_key_id


def _expires_at(token: Mapping[str, Any]) -> datetime | None:
    expires_in = token.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        return datetime.now(UTC) + timedelta(seconds=float(expires_in))
    return None


def expiring(row: AuthToken, now: datetime | None = None) -> bool:
    if row.access_token_enc is None:
        return True
    if row.expires_at is None:
        return False
    return row.expires_at - (now or datetime.now(UTC)) < REFRESH_BEFORE


async def lock_grant(session: AsyncSession, user_id: uuid.UUID, provider: str) -> AuthToken | None:
    """The grant row, locked until the session's transaction ends."""
    result = await session.execute(
        select(AuthToken)
        .where(AuthToken.user_id == user_id, AuthToken.provider == provider)
        .with_for_update()
    )
    return result.scalar_one_or_none()


async def drop_narrowed(session: AsyncSession, row: AuthToken) -> None:
    """Forget the tokens narrowed from `row` (`pasar_core.oauth.narrowing`): its tokens were
    replaced or refused, so tokens minted from them must not serve another call."""
    await session.execute(delete(NarrowedToken).where(NarrowedToken.grant_id == row.id))


async def store_grant(
    services: Services,
    *,
    user_id: uuid.UUID,
    provider: str,
    token: Mapping[str, Any],
    granted: frozenset[str],
    account: ProviderAccount | None = None,
    source: str | None = None,
    organisation_id: uuid.UUID | None = None,
) -> None:
    """Save a code exchange's tokens, the scopes actually granted and the account that
    consented."""
    async with services.sessionmaker.begin() as session:
        await session.execute(
            insert(AuthToken)
            .values(
                id=uuid.uuid4(), user_id=user_id, provider=provider, scopes=[], status=NEEDS_REAUTH
            )
            .on_conflict_do_nothing(index_elements=[AuthToken.user_id, AuthToken.provider])
        )
        row = await lock_grant(session, user_id, provider)
        assert row is not None
        # tokens minted from the old tokens (maybe another provider account's) are not these
        await drop_narrowed(session, row)
        kept_refresh = None
        other_account = (
            account is not None
            and row.account_subject is not None
            and row.account_subject != account.subject
        )
        if row.status == ACTIVE and row.refresh_token_enc is not None and not other_account:
            try:
                kept_refresh = open_tokens(services.keyring, row).refresh_token
            except DecryptionFailed:
                log.warning("discarding an unreadable refresh token of %s/%s", user_id, provider)
        access = token.get("access_token")
        refresh = token.get("refresh_token")
        seal_tokens(
            services.keyring,
            row,
            GrantTokens(
                access_token=access if isinstance(access, str) else None,
                refresh_token=refresh if isinstance(refresh, str) and refresh else kept_refresh,
            ),
        )
        row.scopes = sorted(granted)
        row.expires_at = _expires_at(token)
        row.status, row.last_error = ACTIVE, None
        row.updated_at = datetime.now(UTC)
        if account is not None:
            row.account_subject, row.account_email = account.subject, account.email
        await audit.record(session, Action.OAUTH_CONNECTED, Actor(user_id, "consent", source=source,
                                 organisation_id=organisation_id),
                           target=("grant", provider), provider=provider, scopes=granted)  # fmt: skip


def oauth_client(client: ProviderClient) -> Any:
    """authlib's async OAuth 2.0 client for `client` (use as an async context manager)."""
    return AsyncOAuth2Client(
        client_id=client.client_id,
        client_secret=client.client_secret,
        redirect_uri=client.redirect_uri,
        code_challenge_method="S256",
        timeout=TIMEOUT_S,
    )


async def refreshed_for_scopes(
    client: ProviderClient, provider: str, refresh_token: str, scopes: frozenset[str]
) -> tuple[str, float | None]:
    """An access token for `scopes` only, by the refresh grant with a `scope` subset (the grant
    itself is unchanged): the token and its `expires_in` in seconds (None: not said)."""
    try:
        async with oauth_client(client) as oauth:
            answer = await oauth.refresh_token(
                client.token_url, refresh_token=refresh_token, scope=" ".join(sorted(scopes))
            )
    except OAuthError as error:
        raise OAuthProviderError(f"{provider} refused a narrowed token: {error.error}") from None
    except (httpx2.HTTPError, ValueError) as error:
        raise OAuthProviderError(
            f"{provider} could not issue a narrowed token ({type(error).__name__})"
        ) from None
    access = answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuthProviderError(f"{provider} answered without an access token")
    expires_in = answer.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        return access, float(expires_in)
    return access, None


@dataclass(frozen=True, slots=True)
class FreshToken:
    access_token: str
    scopes: frozenset[str]

    def __repr__(self) -> str:
        return f"FreshToken(scopes={sorted(self.scopes)!r})"


async def fresh_token(services: Services, user_id: uuid.UUID, provider: str) -> FreshToken:
    """The grant's access token, refreshed first when it expires within `REFRESH_BEFORE`."""
    async with services.sessionmaker() as session:
        row = await session.scalar(
            select(AuthToken).where(AuthToken.user_id == user_id, AuthToken.provider == provider)
        )
    if row is None:
        raise ReauthorizationRequired(provider, f"{provider} is not connected")
    if row.status != ACTIVE:
        raise ReauthorizationRequired(provider, row.last_error or "the grant needs to be renewed")
    if not expiring(row):
        try:
            access = open_tokens(services.keyring, row).access_token
        except DecryptionFailed:
            access = None  # the locked path below marks the grant and raises
        if access:
            return FreshToken(access, frozenset(row.scopes))
    return await refresh_grant(services, user_id, provider)


async def refresh_grant(
    services: Services, user_id: uuid.UUID, provider: str, *, force: bool = False
) -> FreshToken:
    """Refresh under the grant's row lock (see the module docstring)."""
    refreshes = services.metrics.token_refreshes
    try:
        fresh = await _refresh_grant(services, user_id, provider, force=force)
    except ReauthorizationRequired:
        refreshes.labels(provider=provider, outcome="reauthorization_required").inc()
        raise
    except OAuthProviderError:
        refreshes.labels(provider=provider, outcome="provider_error").inc()
        raise
    refreshes.labels(provider=provider, outcome="success").inc()
    return fresh


async def _refresh_grant(
    services: Services, user_id: uuid.UUID, provider: str, *, force: bool
) -> FreshToken:
    async with services.sessionmaker.begin() as session:
        row = await lock_grant(session, user_id, provider)
        if row is None:
            raise ReauthorizationRequired(provider, f"{provider} is not connected")
        if row.status != ACTIVE:
            raise ReauthorizationRequired(provider, row.last_error or "the grant needs renewal")
        error: ReauthorizationRequired
        try:
            tokens = open_tokens(services.keyring, row)
        except DecryptionFailed:
            log.warning("the %s grant of user %s fails to decrypt; marked needs_reauth",
                        provider, user_id)  # fmt: skip
            error = CredentialsUnreadable(provider, UNREADABLE)
        else:
            if not force and not expiring(row) and tokens.access_token:
                return FreshToken(tokens.access_token, frozenset(row.scopes))  # refreshed meanwhile
            if not tokens.refresh_token:
                failure = "the access token expired and there is no refresh token"
            else:
                fresh = await _refresh_at_provider(services, row, tokens.refresh_token)
                if isinstance(fresh, FreshToken):
                    return fresh
                failure = fresh
            error = ReauthorizationRequired(provider, failure)
        row.status, row.last_error = NEEDS_REAUTH, error.reason
        row.updated_at = datetime.now(UTC)
        await drop_narrowed(session, row)
        await audit.record(session, Action.OAUTH_REFRESH_FAILED, Actor(user_id, "system"),
                           target=("grant", provider), outcome="failed", provider=provider,
                           details={"reason": error.reason[:500]})  # fmt: skip
    raise error


async def _refresh_at_provider(
    services: Services, row: AuthToken, refresh_token: str
) -> FreshToken | str:
    """Refresh the locked `row` at its provider: the new token, or why the grant is dead
    (`invalid_grant`); `OAuthProviderError` for failures worth retrying later."""
    provider = row.provider
    client = require_client(services, provider)
    try:
        async with oauth_client(client) as oauth:
            token = await oauth.refresh_token(client.token_url, refresh_token=refresh_token)
    except OAuthError as error:
        if error.error != "invalid_grant":
            raise OAuthProviderError(f"{provider} refused the refresh: {error.error}") from None
        return f"{provider} revoked or expired the grant (invalid_grant)"
    except (httpx2.HTTPError, ValueError) as error:
        raise OAuthProviderError(
            f"{provider} could not refresh the token ({type(error).__name__})"
        ) from None
    access = token.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuthProviderError(f"{provider} answered a refresh without a token")
    refresh = token.get("refresh_token")
    seal_tokens(
        services.keyring,
        row,
        GrantTokens(access, refresh if isinstance(refresh, str) and refresh else refresh_token),
    )
    if isinstance(token.get("scope"), str) and token["scope"].strip():
        row.scopes = sorted(set(token["scope"].split()))
    row.expires_at = _expires_at(token)
    row.refreshed_at = row.updated_at = datetime.now(UTC)
    row.last_error = None
    return FreshToken(access, frozenset(row.scopes))


async def disconnect(
    services: Services, user_id: uuid.UUID, provider: str, *, actor: Actor | None = None
) -> bool:
    """Delete the grant's tokens and revoke it at the provider; whether the provider confirmed."""
    async with services.sessionmaker.begin() as session:
        row = await lock_grant(session, user_id, provider)
        if row is None:
            raise NotFound(f"{provider} is not connected", details={"provider": provider})
        try:
            tokens = open_tokens(services.keyring, row)
        except DecryptionFailed:
            tokens = GrantTokens(None, None)
        await drop_narrowed(session, row)  # the foreign key cascades too; not relied upon
        await session.delete(row)
        await session.execute(
            delete(OAuthState).where(OAuthState.user_id == user_id, OAuthState.provider == provider)
        )
        await audit.record(session, Action.OAUTH_DISCONNECTED, actor or Actor(user_id, "token"),
                           target=("grant", provider), provider=provider, scopes=row.scopes)  # fmt: skip
    client = provider_client(services, provider)
    value = tokens.refresh_token or tokens.access_token
    if client is None or client.revoke_url is None or value is None:
        return False
    hint = "refresh_token" if tokens.refresh_token else "access_token"
    try:
        async with oauth_client(client) as oauth:
            response = await oauth.revoke_token(
                client.revoke_url, token=value, token_type_hint=hint
            )
    except httpx2.HTTPError as error:
        log.warning("revoking %s grant failed: %s", provider, type(error).__name__)
        return False
    # 400 invalid_token: the provider no longer knows the token, so the grant is gone already.
    return response.status_code in (200, 400)


async def rotate_keys(services: Services) -> dict[str, int]:
    """Re-encrypt every sealed value not under the active key; counts per table."""
    from pasar_core.agents.secrets import _associated_data as secret_ad
    from pasar_core.storage.models import AgentSecret

    keyring, active = services.keyring, services.keyring.active_key_id
    counts = {"auth_tokens": 0, "oauth_states": 0, "agent_secrets": 0}
    async with services.sessionmaker.begin() as session:
        grants = await session.scalars(
            select(AuthToken).where(AuthToken.key_id != active).with_for_update()
        )
        for grant in grants:
            seal_tokens(keyring, grant, open_tokens(keyring, grant))
            counts["auth_tokens"] += 1
        states = await session.scalars(
            select(OAuthState).where(OAuthState.key_id != active).with_for_update()
        )
        for state in states:
            ad = state_associated_data(state)
            plain = keyring.open_text(Sealed(state.key_id, state.code_verifier_enc), ad)
            sealed = keyring.seal_text(plain, ad)
            state.key_id, state.code_verifier_enc = sealed.key_id, sealed.blob
            counts["oauth_states"] += 1
        secrets = await session.scalars(
            select(AgentSecret).where(AgentSecret.key_id != active).with_for_update()
        )
        for secret in secrets:
            ad = secret_ad(secret.agent_id, secret.name)
            plain = keyring.open_text(Sealed(secret.key_id, secret.value_enc), ad)
            sealed = keyring.seal_text(plain, ad)
            secret.key_id, secret.value_enc = sealed.key_id, sealed.blob
            counts["agent_secrets"] += 1
        # tokens narrowed to one agent's scopes are minted again on demand: dropped, not resealed
        dropped = await session.execute(delete(NarrowedToken).where(NarrowedToken.key_id != active))
        counts["narrowed_tokens_dropped"] = int(getattr(dropped, "rowcount", 0) or 0)
    return counts


def state_associated_data(state: OAuthState) -> str:
    return f"oauth-state|{state.state_hash}|{state.user_id}|{state.provider}"
