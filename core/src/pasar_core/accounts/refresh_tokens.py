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
from pasar_core.organisations.store import default_membership
from pasar_core.storage.models import RefreshToken, User

PREFIX = "psrt_"
MAX_LENGTH = 200


class RefreshTokenReused(Unauthenticated):
    """A spent token came back: whoever holds its family may be a thief."""

    def __init__(self, user_id: uuid.UUID, family_id: uuid.UUID) -> None:
        super().__init__("the refresh token was already used; every session of it is revoked")
        self.user_id = user_id
        self.family_id = family_id


@dataclass(frozen=True, slots=True)
class IssuedRefresh:
    token: str
    expires_in: int
    family_id: uuid.UUID
    """The session: the access tokens issued with this refresh token carry it as `sid`."""


async def issue(
    session: AsyncSession,
    user_id: uuid.UUID,
    ttl_s: int,
    organisation_id: uuid.UUID,
    family_id: uuid.UUID | None = None,
) -> IssuedRefresh:
    token = PREFIX + secrets.token_urlsafe(32)
    family_id = family_id or uuid.uuid4()
    session.add(
        RefreshToken(
            user_id=user_id,
            family_id=family_id,
            organisation_id=organisation_id,
            token_hash=sha256_hex(token),
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl_s),
        )
    )
    return IssuedRefresh(token=token, expires_in=ttl_s, family_id=family_id)


async def rotate(
    session: AsyncSession, token: str, ttl_s: int
) -> tuple[User, IssuedRefresh, uuid.UUID]:
    """Spend `token` for the next one of its family (within the caller's transaction); the
    user, the next token and the organisation the session acts in."""
    if not token.startswith(PREFIX) or len(token) > MAX_LENGTH:
        raise Unauthenticated("the refresh token is invalid")
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(token)).with_for_update()
    )
    now = datetime.now(UTC)
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("the refresh token is invalid or revoked; log in again")
    if row.used_at is not None:
        # The caller revokes the family and commits.
        raise RefreshTokenReused(row.user_id, row.family_id)
    if row.expires_at <= now:
        raise Unauthenticated("the refresh token has expired; log in again")
    user = await session.get(User, row.user_id)
    if user is None:
        raise Unauthenticated("the refresh token's user no longer exists")
    row.used_at = now
    organisation_id = row.organisation_id
    if organisation_id is None:
        organisation_id, _ = await default_membership(session, user.id)
    following = await issue(session, user.id, ttl_s, organisation_id, row.family_id)
    return user, following, organisation_id


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


async def revoke(session: AsyncSession, token: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """Log out: revoke the family of `token`; its (user id, family id), or None when unknown."""
    row = (
        await session.execute(
            select(RefreshToken.user_id, RefreshToken.family_id).where(
                RefreshToken.token_hash == sha256_hex(token)
            )
        )
    ).first()
    if row is None:
        return None
    await revoke_family(session, row.family_id)
    return row.user_id, row.family_id


async def revoke_all(
    session: AsyncSession,
    user_id: uuid.UUID,
    live_since: datetime,
    organisation_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Revoke every refresh token of the user (only those of sessions acting in
    `organisation_id` when given; a session of no recorded organisation counts as acting in
    it). Returns the families that issued a token after `live_since`: the sessions that may
    still hold unexpired access tokens."""
    mine = RefreshToken.user_id == user_id
    if organisation_id is not None:
        mine = mine & (
            (RefreshToken.organisation_id == organisation_id)
            | RefreshToken.organisation_id.is_(None)
        )
    families = await session.scalars(
        select(RefreshToken.family_id).where(mine, RefreshToken.created_at > live_since).distinct()
    )
    live = list(families)
    await session.execute(
        update(RefreshToken)
        .where(mine, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return live
