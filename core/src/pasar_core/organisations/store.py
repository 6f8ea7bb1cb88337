"""Organisations and memberships as sign-up, log-in and switching read them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.accounts.principal import Principal
from pasar_core.errors import NotFound
from pasar_core.services import Services
from pasar_core.storage.models import Membership, Organisation, User


@dataclass(frozen=True, slots=True)
class MembershipView:
    organisation_id: uuid.UUID
    name: str
    personal: bool
    role: str
    created_at: datetime


class OrganisationInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)


def parse_id(raw: str | uuid.UUID, what: str) -> uuid.UUID:
    """Ids are UUIDs; anything else is something that does not exist."""
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"no {what} with id {str(raw)[:100]!r}") from None


async def add_personal(session: AsyncSession, user: User) -> uuid.UUID:
    """The new user's personal organisation, with them as its admin (caller's transaction)."""
    organisation = Organisation(name=user.email[:200], personal=True, created_by=user.id)
    session.add(organisation)
    await session.flush()
    session.add(Membership(organisation_id=organisation.id, user_id=user.id, role="admin"))
    return organisation.id


async def default_membership(session: AsyncSession, user_id: uuid.UUID) -> tuple[uuid.UUID, str]:
    """Where a log-in acts: the personal organisation, else the oldest membership."""
    row = (
        await session.execute(
            select(Membership.organisation_id, Membership.role)
            .join(Organisation, Organisation.id == Membership.organisation_id)
            .where(Membership.user_id == user_id)
            .order_by(Organisation.personal.desc(), Membership.created_at)
            .limit(1)
        )
    ).first()
    if row is None:
        raise NotFound("the account belongs to no organisation")
    return row.organisation_id, row.role


async def membership_role(
    session: AsyncSession, user_id: uuid.UUID, organisation_id: uuid.UUID
) -> str | None:
    role: str | None = await session.scalar(
        select(Membership.role).where(
            Membership.user_id == user_id, Membership.organisation_id == organisation_id
        )
    )
    return role


async def list_memberships(services: Services, user_id: uuid.UUID) -> list[MembershipView]:
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(
                Organisation.id, Organisation.name, Organisation.personal, Membership.role,
                Organisation.created_at,
            )
            .join(Membership, Membership.organisation_id == Organisation.id)
            .where(Membership.user_id == user_id)
            .order_by(Organisation.personal.desc(), Organisation.created_at, Organisation.id)
        )  # fmt: skip
        return [MembershipView(*row) for row in rows]


async def create_organisation(
    services: Services, principal: Principal, data: OrganisationInput
) -> MembershipView:
    """A new team with the caller as its admin (they switch to it to act in it)."""
    async with services.sessionmaker.begin() as session:
        organisation = Organisation(name=data.name, created_by=principal.user_id)
        session.add(organisation)
        await session.flush()
        session.add(
            Membership(organisation_id=organisation.id, user_id=principal.user_id, role="admin")
        )
        await session.flush()
        await session.refresh(organisation)
    return MembershipView(
        organisation.id, organisation.name, False, "admin", organisation.created_at
    )
