"""The consent callback, `GET /auth/{provider}/callback?code&state` (or `?error&state`).

The state is consumed only when the request comes from the browser that started it (its
cookie's secret matches the hash stored on the state) and before anything else, so a forged,
reused, expired, foreign or misdirected state never reaches the provider's token endpoint. A
request from another browser changes nothing: a stranger holding the state cannot use it, nor
burn it for its owner.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import httpx2
from authlib.integrations.httpx_client import OAuthError  # type: ignore[import-untyped]
from sqlalchemy import delete, select

from pasar_core.crypto import DecryptionFailed, Sealed
from pasar_core.errors import (
    ConsentCodeRejected,
    ConsentNotGranted,
    ConsentStateExpired,
    ConsentStateInvalid,
    ConsentWrongBrowser,
    OAuthProviderError,
)
from pasar_core.oauth import scopes as compiler
from pasar_core.oauth.clients import ProviderClient
from pasar_core.oauth.consent import MAX_PARAM, hash_state
from pasar_core.oauth.identity import consenting_account
from pasar_core.oauth.start import consent_client, hash_secret, live_state
from pasar_core.oauth.tokens import oauth_client, state_associated_data, store_grant
from pasar_core.services import Services
from pasar_core.storage.models import Agent, AgentTool, OAuthState, User
from pasar_core.tool_access import registry_for

log = logging.getLogger("pasar.oauth")


@dataclass(frozen=True, slots=True)
class ConsentOutcome:
    """What the result page says after a successful consent."""

    provider: str
    title: str
    pasar_account: str
    provider_account: str | None
    """The email the provider named for the account that consented (None: it did not say)."""
    granted: tuple[str, ...]
    still_missing: tuple[str, ...]
    agent_id: uuid.UUID | None


def _same_browser(row: OAuthState, browser_secret: str | None) -> bool:
    if row.browser_hash is None or not browser_secret or len(browser_secret) > MAX_PARAM:
        return False
    return hmac.compare_digest(row.browser_hash, hash_secret(browser_secret))


async def _consume(
    services: Services, client: ProviderClient, state: str, browser_secret: str | None
) -> tuple[OAuthState, str]:
    """Delete and return the state row and its user's email: once, even under concurrent
    callbacks, and only for the browser that started it."""
    provider = client.spec.id
    try:
        async with services.sessionmaker.begin() as session:
            row = await live_state(session, provider, state, lock=True)
            if not _same_browser(row, browser_secret):
                log.warning("consent callback for %s from another browser refused", provider)
                raise ConsentWrongBrowser(
                    f"This page was opened in another browser than the one that started "
                    f"connecting {client.spec.title}, so nothing was connected. If someone sent "
                    "you a link to connect your account, stop here: they would get access to "
                    "your data. To connect your own account, start again from pasar in this "
                    "browser, and do not share this page's address."
                )
            user = await session.get(User, row.user_id)
            await session.delete(row)
    except ConsentStateExpired:
        async with services.sessionmaker.begin() as session:  # dead anyway: tidy it away
            await session.execute(
                delete(OAuthState).where(OAuthState.state_hash == hash_state(state))
            )
        raise
    if user is None:
        raise ConsentStateInvalid("This link is not valid or was already used.")
    return row, user.email


async def _agent_organisation(services: Services, agent_id: uuid.UUID | None) -> uuid.UUID | None:
    """The organisation of the agent a consent was for (its audit row names it)."""
    if agent_id is None:
        return None
    async with services.sessionmaker() as session:
        found: uuid.UUID | None = await session.scalar(
            select(Agent.organisation_id).where(Agent.id == agent_id)
        )
    return found


async def _still_missing(
    services: Services, provider: str, row: OAuthState, granted: frozenset[str]
) -> frozenset[str]:
    spec = services.registry.auth_providers.get(provider)
    if row.agent_id is None:
        return compiler.uncovered(spec, granted, row.scopes)
    async with services.sessionmaker() as session:
        tool_ids = list(
            await session.scalars(
                select(AgentTool.tool_id).where(AgentTool.agent_id == row.agent_id)
            )
        )
    registry = await registry_for(services, row.user_id, tool_ids)
    plan = compiler.compile_scopes(registry, [t for t in tool_ids if t in registry.tools]).get(
        provider
    )
    needed = plan.scope_ids if plan is not None else row.scopes
    return compiler.uncovered(spec, granted, needed)


async def complete_consent(
    services: Services,
    provider: str,
    params: Mapping[str, str],
    browser_secret: str | None,
    *,
    source: str | None = None,
) -> ConsentOutcome:
    """Exchange the code and store the grant; a typed `PasarError` for every refusal.
    `source`: the browser's address, for the audit row."""
    state = params.get("state", "")
    if not state or len(state) > MAX_PARAM:
        raise ConsentStateInvalid("The link has no valid state. Start again from pasar.")
    client = consent_client(services, provider)
    row, pasar_account = await _consume(services, client, state, browser_secret)
    title = client.spec.title
    error = params.get("error")
    if error:
        raise ConsentNotGranted(
            "You did not grant access."
            if error == "access_denied"
            else f"{title} reported an error: {error[:100]}"
        )
    code = params.get("code", "")
    if not code or len(code) > MAX_PARAM:
        raise ConsentCodeRejected(f"{title} sent no authorization code.")
    try:
        verifier = services.keyring.open_text(
            Sealed(row.key_id, row.code_verifier_enc), state_associated_data(row)
        )
    except DecryptionFailed:
        raise ConsentStateInvalid("This link can no longer be verified. Start again.") from None
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
        raise ConsentCodeRejected(f"{title} refused the code ({failure.error}).") from None
    except (httpx2.HTTPError, ValueError) as failure:
        log.warning("token exchange with %s failed: %s", provider, type(failure).__name__)
        raise OAuthProviderError(f"{title} could not be reached. Try again.") from None
    account = consenting_account(client, token)
    scope = token.get("scope")
    granted = (
        frozenset(scope.split()) if isinstance(scope, str) and scope else frozenset(row.scopes)
    )
    await store_grant(
        services,
        user_id=row.user_id,
        provider=provider,
        token=token,
        granted=granted,
        account=account,
        source=source,
        organisation_id=await _agent_organisation(services, row.agent_id),
    )
    still_missing = await _still_missing(services, provider, row, granted)
    return ConsentOutcome(
        provider=provider,
        title=title,
        pasar_account=pasar_account,
        provider_account=account.email if account else None,
        granted=tuple(sorted(granted)),
        still_missing=tuple(sorted(still_missing)),
        agent_id=row.agent_id,
    )
