"""A user's provider grants as the API shows them: scopes and health, never tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from pasar_core.oauth.tokens import ACTIVE, disconnect
from pasar_core.services import Services
from pasar_core.storage.models import AuthToken

__all__ = ["ConnectionView", "disconnect", "list_connections"]


@dataclass(frozen=True, slots=True)
class ConnectionView:
    provider: str
    title: str
    scopes: tuple[str, ...]
    health: str
    """`ok`; `expired` (access token expired, refreshable); `needs_reauth` (refused by the
    provider, or expired without a refresh token): reconnect."""
    account: str | None
    """The provider account's email, as the provider named it at consent."""
    has_refresh_token: bool
    expires_at: datetime | None
    refreshed_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


def health(row: AuthToken, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    if row.status != ACTIVE:
        return "needs_reauth"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired" if row.refresh_token_enc is not None else "needs_reauth"
    return "ok"


async def list_connections(services: Services, user_id: uuid.UUID) -> list[ConnectionView]:
    async with services.sessionmaker() as session:
        rows = await session.scalars(
            select(AuthToken).where(AuthToken.user_id == user_id).order_by(AuthToken.provider)
        )
        providers = services.registry.auth_providers
        return [
            ConnectionView(
                provider=row.provider,
                title=providers[row.provider].title if row.provider in providers else row.provider,
                scopes=tuple(sorted(row.scopes)),
                health=health(row),
                account=row.account_email,
                has_refresh_token=row.refresh_token_enc is not None,
                expires_at=row.expires_at,
                refreshed_at=row.refreshed_at,
                last_error=row.last_error,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row in rows
        ]
