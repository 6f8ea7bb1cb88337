"""A provider's endpoints as this deployment reaches them, and this server's client there."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pasar_core.errors import OAuthNotConfigured
from pasar_core.services import Services
from pasar_core.specs import AuthProviderSpec

TIMEOUT_S = 15.0


def rebase(url: str, base: str | None) -> str:
    """`url` with its origin replaced by `base` (which may carry a path prefix)."""
    if not base:
        return url
    parts = urlsplit(url)
    return base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True, slots=True)
class ProviderClient:
    spec: AuthProviderSpec
    client_id: str
    client_secret: str | None = field(repr=False)
    redirect_uri: str
    start_url: str
    """pasar's page that binds a consent to a browser, on the callback's origin (its cookie
    must reach the callback)."""
    authorize_url: str
    token_url: str
    revoke_url: str | None
    api_base_url: str | None


def provider_client(services: Services, provider_id: str) -> ProviderClient | None:
    """None when the provider is not installed or this server has no client for it."""
    spec = services.registry.auth_providers.get(provider_id)
    config = services.settings.oauth_clients.get(provider_id)
    if spec is None or config is None:
        return None
    redirect = config.redirect_uri or f"{services.settings.base_url}/auth/{provider_id}/callback"
    start = (
        redirect.removesuffix("/callback") + "/start"
        if redirect.endswith("/callback")
        else f"{services.settings.base_url}/auth/{provider_id}/start"
    )
    return ProviderClient(
        spec=spec,
        client_id=config.client_id,
        client_secret=config.client_secret,
        redirect_uri=redirect,
        start_url=start,
        authorize_url=rebase(spec.authorize_url, config.auth_base_url),
        token_url=rebase(spec.token_url, config.token_base_url),
        revoke_url=rebase(spec.revoke_url, config.token_base_url) if spec.revoke_url else None,
        api_base_url=config.api_base_url,
    )


def require_client(services: Services, provider_id: str) -> ProviderClient:
    client = provider_client(services, provider_id)
    if client is None:
        name = provider_id.upper()
        raise OAuthNotConfigured(
            f"OAuth for {provider_id!r} is not configured on this server "
            f"(set PASAR_{name}_CLIENT_ID and PASAR_{name}_CLIENT_SECRET)",
            details={"provider": provider_id},
        )
    return client
