"""Per-agent enforcement at dispatch: a tool runs only if the agent declared it and the user's
grant covers its scopes; the credentials it gets name only the scopes that tool needs."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from pasar_core.errors import ReauthorizationRequired, ToolNotPermitted
from pasar_core.oauth import scopes as compiler
from pasar_core.oauth.clients import provider_client, require_client
from pasar_core.oauth.consent import consent_url
from pasar_core.oauth.tokens import fresh_token
from pasar_core.services import Services
from pasar_core.specs import OAuthCredentials


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def _reconnect(
    services: Services,
    error: ReauthorizationRequired,
    *,
    user_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    agent_tool_ids: Collection[str],
    tool_id: str,
) -> ReauthorizationRequired:
    """`error` with the agent's missing scopes and a consent link for them."""
    provider = error.provider
    plan = compiler.compile_scopes(services.registry, agent_tool_ids).get(provider)
    scopes = plan.scope_ids if plan else frozenset(services.registry.tool(tool_id).spec.scopes)
    client = require_client(services, provider)  # no client: no consent link can fix it
    async with services.sessionmaker.begin() as session:
        url = await consent_url(
            session, services, client, user_id=user_id, agent_id=agent_id, scopes=scopes
        )
    return ReauthorizationRequired(
        provider, error.reason, missing=error.missing or scopes, auth_url=url, tool_id=tool_id
    )


async def credentials_for_tool(
    services: Services,
    *,
    user_id: uuid.UUID | str,
    agent_tool_ids: Collection[str],
    tool_id: str,
    agent_id: uuid.UUID | str | None = None,
) -> OAuthCredentials | None:
    """The OAuth credentials for one call of `tool_id` by an agent declaring `agent_tool_ids`.

    - None: the tool needs no OAuth provider (run it without credentials).
    - `ToolNotPermitted` (NOT_PERMITTED): the agent did not declare the tool, or the tool's
      scopes are not among the agent's compiled scopes. Never fixed by consent.
    - `ReauthorizationRequired` (AUTH_REQUIRED): no grant, a grant marked `needs_reauth`
      (`invalid_grant`), or a grant that lacks the tool's scopes (e.g. unticked at consent). It
      carries `auth_url` (a fresh consent link for the agent's scopes, bound to `agent_id`).
    - `OAuthNotConfigured` (OAUTH_NOT_CONFIGURED): consent is needed but this server has no
      OAuth client for the provider, so no link could fix it.
    - `OAuthProviderError`: the provider failed transiently while refreshing; retry later.

    The access token is refreshed first when it expires within two minutes (single-flight
    per grant across processes)."""
    if tool_id not in agent_tool_ids:
        raise ToolNotPermitted(tool_id, "the agent does not declare this tool")
    spec = services.registry.tool(tool_id).spec
    if not spec.auth_provider:
        return None
    provider_id = spec.auth_provider
    provider = services.registry.auth_providers.get(provider_id)
    plan = compiler.compile_scopes(services.registry, agent_tool_ids).get(provider_id)
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
    except ReauthorizationRequired as error:
        raise await _reconnect(
            services,
            error,
            user_id=user,
            agent_id=agent,
            agent_tool_ids=agent_tool_ids,
            tool_id=tool_id,
        ) from None
    client = provider_client(services, provider_id)
    return OAuthCredentials(
        provider=provider_id,
        access_token=token.access_token,
        scopes=frozenset(spec.scopes),
        api_base_url=client.api_base_url if client else None,
    )
