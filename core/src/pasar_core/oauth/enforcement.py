"""Per-agent enforcement at dispatch: a tool runs only if the agent declared it and the user's
grant covers its scopes; the credentials it gets name only the scopes that tool needs."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping

from sqlalchemy import select

from pasar_core.errors import ReauthorizationRequired, ToolNotPermitted
from pasar_core.oauth import scopes as compiler
from pasar_core.oauth.clients import provider_client, require_client
from pasar_core.oauth.connections import health
from pasar_core.oauth.consent import consent_url
from pasar_core.oauth.narrowing import narrowed_access_token
from pasar_core.oauth.tokens import fresh_token
from pasar_core.registry import Registry
from pasar_core.services import Services
from pasar_core.specs import OAuthCredentials
from pasar_core.storage.models import AuthToken


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def _reconnect(
    services: Services,
    registry: Registry,
    error: ReauthorizationRequired,
    *,
    user_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    agent_tool_ids: Collection[str],
    tool_id: str,
) -> ReauthorizationRequired:
    """`error` with the agent's missing scopes and a consent link for them."""
    provider = error.provider
    plan = compiler.compile_scopes(registry, agent_tool_ids).get(provider)
    scopes = plan.scope_ids if plan else frozenset(registry.tool(tool_id).spec.scopes)
    client = require_client(services, provider)  # no client: no consent link can fix it
    async with services.sessionmaker.begin() as session:
        url = await consent_url(
            session, services, client, user_id=user_id, agent_id=agent_id, scopes=scopes
        )
    return type(error)(
        provider, error.reason, missing=error.missing or scopes, auth_url=url, tool_id=tool_id
    )


async def stored_grant_gap(
    services: Services,
    registry: Registry,
    *,
    user_id: uuid.UUID,
    agent_tool_ids: Collection[str],
    tool_id: str,
    agent_id: uuid.UUID | None = None,
) -> ReauthorizationRequired | None:
    """Why the user's stored grant cannot serve `tool_id`, judged from its row alone (no
    decryption, no provider call): no grant, one marked `needs_reauth`, one expired without a
    refresh token, or one lacking the tool's scopes; with a consent link. None otherwise, and
    for tools without a provider. What only using the grant reveals (tokens that fail to
    decrypt, a refresh refused) surfaces from `credentials_for_tool` at the call."""
    spec = registry.tool(tool_id).spec
    provider_id = spec.auth_provider
    if not provider_id:
        return None
    async with services.sessionmaker() as session:
        row = await session.scalar(
            select(AuthToken).where(AuthToken.user_id == user_id, AuthToken.provider == provider_id)
        )
    if row is None:
        gap = ReauthorizationRequired(provider_id, f"{provider_id} is not connected")
    elif health(row) == "needs_reauth":
        gap = ReauthorizationRequired(provider_id, row.last_error or "the grant needs renewal")
    else:
        lacking = compiler.uncovered(
            registry.auth_providers.get(provider_id), row.scopes, spec.scopes
        )
        if not lacking:
            return None
        gap = ReauthorizationRequired(
            provider_id, "the grant lacks scopes this tool needs", missing=lacking
        )
    return await _reconnect(
        services, registry, gap, user_id=user_id, agent_id=agent_id, agent_tool_ids=agent_tool_ids,
        tool_id=tool_id,
    )  # fmt: skip


async def credentials_for_tool(
    services: Services,
    registry: Registry,
    *,
    user_id: uuid.UUID | str,
    agent_tool_ids: Collection[str],
    tool_id: str,
    agent_id: uuid.UUID | str | None = None,
    plans: Mapping[str, compiler.ProviderScopes] | None = None,
) -> OAuthCredentials | None:
    """The OAuth credentials for one call of `tool_id` by an agent declaring `agent_tool_ids`
    (`plans`: the agent's compiled scopes, when the caller compiled them once for a run).

    - None: the tool needs no OAuth provider (run it without credentials).
    - `ToolNotPermitted` (NOT_PERMITTED): the agent did not declare the tool, or the tool's
      scopes are not among the agent's compiled scopes. Never fixed by consent.
    - `ReauthorizationRequired` (AUTH_REQUIRED): no grant, a grant marked `needs_reauth`
      (`invalid_grant`), or a grant that lacks the tool's scopes (e.g. unticked at consent). It
      carries `auth_url` (a fresh consent link for the agent's scopes, bound to `agent_id`).
    - `OAuthNotConfigured` (OAUTH_NOT_CONFIGURED): consent is needed but this server has no
      OAuth client for the provider, so no link could fix it.
    - `CredentialsUnreadable` (CREDENTIALS_UNREADABLE, a `ReauthorizationRequired`): the stored
      tokens fail to decrypt; the grant is now marked `needs_reauth`.
    - `OAuthProviderError`: the provider failed transiently while refreshing; retry later.

    The access token is refreshed first when it expires within two minutes (single-flight
    per grant across processes); for a provider that narrows on refresh it is a token for the
    agent's compiled scopes alone (`pasar_core.oauth.narrowing`)."""
    if tool_id not in agent_tool_ids:
        raise ToolNotPermitted(tool_id, "the agent does not declare this tool")
    spec = registry.tool(tool_id).spec
    if not spec.auth_provider:
        return None
    provider_id = spec.auth_provider
    provider = registry.auth_providers.get(provider_id)
    if plans is None:
        plans = compiler.compile_scopes(registry, agent_tool_ids)
    plan = plans.get(provider_id)
    allowed = plan.scope_ids if plan else frozenset()
    if compiler.uncovered(provider, allowed, spec.scopes):
        raise ToolNotPermitted(tool_id, "its scopes exceed the agent's")
    user = _uuid(user_id)
    agent = _uuid(agent_id) if agent_id is not None else None
    try:
        token = await fresh_token(services, user, provider_id)
        lacking = compiler.uncovered(provider, token.scopes, spec.scopes)
        if lacking:
            raise ReauthorizationRequired(
                provider_id, "the grant lacks scopes this tool needs", missing=lacking
            )
        access = token.access_token
        if provider is not None and provider.narrows_on_refresh and plan is not None:
            # a token for this agent's scopes alone, never the whole grant's
            narrowed = await narrowed_access_token(services, provider, user, plan.scope_ids)
            access = narrowed or access
    except ReauthorizationRequired as error:
        raise await _reconnect(
            services,
            registry,
            error,
            user_id=user,
            agent_id=agent,
            agent_tool_ids=agent_tool_ids,
            tool_id=tool_id,
        ) from None
    client = provider_client(services, provider_id)
    return OAuthCredentials(
        provider=provider_id,
        access_token=access,
        scopes=frozenset(spec.scopes),
        api_base_url=client.api_base_url if client else None,
    )
