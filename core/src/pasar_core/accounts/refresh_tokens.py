"""Rotating refresh tokens: each use returns the next token of its family; a token used twice
means it was stolen, so its whole family is revoked. Stored as SHA-256 (256 bits of entropy)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.accounts.api_keys import hash_api_key as sha256_hex
from pasar_core.errors import Unauthenticated
from pasar_core.storage.models import RefreshToken, User

PREFIX = "psrt_"
MAX_LENGTH = 200


class RefreshTokenReused(Unauthenticated):
    """A spent token came back: whoever holds its family may be a thief."""

    def __init__(self, family_id: uuid.UUID) -> None:
        super().__init__("the refresh token was already used; every session of it is revoked")
        self.family_id = family_id


@dataclass(frozen=True, slots=True)
class IssuedRefresh:
    token: str
    expires_in: int


async def issue(
    session: AsyncSession, user_id: uuid.UUID, ttl_s: int, family_id: uuid.UUID | None = None
) -> IssuedRefresh:
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            user_id=user_id,
            family_id=family_id or uuid.uuid4(),
            token_hash=sha256_hex(token),
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl_s),
        )
    )
    return IssuedRefresh(token=token, expires_in=ttl_s)


async def rotate(session: AsyncSession, token: str, ttl_s: int) -> tuple[User, IssuedRefresh]:
    """Spend `token` for the next one of its family (within the caller's transaction)."""
    if not token.startswith(PREFIX) or len(token) > MAX_LENGTH:
        raise Unauthenticated("the refresh token is invalid")
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(token)).with_for_update()
    )
    now = datetime.now(UTC)
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("the refresh token is invalid or revoked; log in again")
    if row.used_at is not None:
        raise RefreshTokenReused(row.family_id)  # the caller revokes the family and commits
    if row.expires_at <= now:
        raise Unauthenticated("the refresh token has expired; log in again")
    user = await session.get(User, row.user_id)
    if user is None:
        raise Unauthenticated("the refresh token's user no longer exists")
    row.used_at = now
    return user, await issue(session, user.id, ttl_s, row.family_id)


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


async def revoke(session: AsyncSession, token: str) -> None:
    """Log out: revoke the family of `token` (an unknown token is not an error)."""
    family = await session.scalar(
        select(RefreshToken.family_id).where(RefreshToken.token_hash == sha256_hex(token))
    )
    if family is not None:
        await revoke_family(session, family)
