"""Invitations: how a user joins an organisation. An admin invites an email address with a
role; the answer is the same whether or not anybody has registered that address (the
invitation names the address, never a user). The invitee (whoever has, or later registers,
the address) sees their pending invitations and accepts or declines them: the membership
exists only once they accept. An invitation lapses after `invitation_ttl_s`; inviting the
same address again replaces its role and expiry; the maintenance job deletes lapsed ones.
Each step leaves an audit row in the organisation (`member.invited`,
`member.invitation_accepted`, `member.invitation_declined`, `member.invitation_revoked`)
naming the invitation or the user by id, never the address.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from pasar_core.accounts.principal import Principal
from pasar_core.audit import record as audit
from pasar_core.audit.record import Action, Actor
from pasar_core.authz.roles import Role
from pasar_core.errors import Conflict, NotFound, RoleEscalation
from pasar_core.organisations.store import MembershipView, parse_id
from pasar_core.services import Services
from pasar_core.storage.models import Invitation, Membership, Organisation, User


class InvitationInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    role: Role = "member"


@dataclass(frozen=True, slots=True)
class InvitationView:
    """What the organisation's admins see of an invitation."""

    id: uuid.UUID
    email: str
    role: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ReceivedInvitation:
    """What the invitee sees: which organisation offers which role, until when."""

    id: uuid.UUID
    organisation_id: uuid.UUID
    organisation_name: str
    role: str
    created_at: datetime
    expires_at: datetime


def _missing(invitation_id: uuid.UUID | str) -> NotFound:
    return NotFound(f"no invitation with id {str(invitation_id)[:100]!r}")


async def invite(
    services: Services, organisation_id: uuid.UUID, data: InvitationInput, *, actor: Actor
) -> InvitationView:
    """Invite `data.email` (CONFLICT only when it is already a member: admins list those)."""
    email = data.email.strip().lower()
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=services.settings.invitation_ttl_s)
    async with services.sessionmaker.begin() as session:
        member = await session.scalar(
            select(Membership.user_id)
            .join(User, User.id == Membership.user_id)
            .where(Membership.organisation_id == organisation_id, User.email == email)
        )
        if member is not None:
            raise Conflict(f"{email} is already a member")
        statement = insert(Invitation).values(
            id=uuid.uuid4(), organisation_id=organisation_id, email=email, role=data.role,
            invited_by=actor.user_id, created_at=now, expires_at=expires,
        )  # fmt: skip
        row = (
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[Invitation.organisation_id, Invitation.email],
                    set_={"role": data.role, "invited_by": actor.user_id, "created_at": now,
                          "expires_at": expires},
                ).returning(Invitation.id)
            )
        ).one()  # fmt: skip
        await audit.record(session, Action.MEMBER_INVITED, actor.within(organisation_id),
                           target=("invitation", row.id), details={"role": data.role})  # fmt: skip
    return InvitationView(row.id, email, data.role, now, expires)


async def list_invitations(services: Services, organisation_id: uuid.UUID) -> list[InvitationView]:
    """The organisation's pending invitations, newest first."""
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(Invitation.id, Invitation.email, Invitation.role, Invitation.created_at,
                   Invitation.expires_at)
            .where(Invitation.organisation_id == organisation_id,
                   Invitation.expires_at > datetime.now(UTC))
            .order_by(Invitation.created_at.desc(), Invitation.id)
        )  # fmt: skip
        return [InvitationView(*row) for row in rows]


async def revoke_invitation(
    services: Services, organisation_id: uuid.UUID, invitation_id: str | uuid.UUID, *,
    actor: Actor,
) -> None:  # fmt: skip
    found = parse_id(invitation_id, "invitation")
    async with services.sessionmaker.begin() as session:
        gone = await session.scalar(
            delete(Invitation)
            .where(Invitation.id == found, Invitation.organisation_id == organisation_id)
            .returning(Invitation.id)
        )
        if gone is None:
            raise _missing(found)
        await audit.record(session, Action.INVITATION_REVOKED, actor.within(organisation_id),
                           target=("invitation", found))  # fmt: skip


def _my_email(user_id: uuid.UUID) -> object:
    return select(User.email).where(User.id == user_id).scalar_subquery()


async def my_invitations(services: Services, principal: Principal) -> list[ReceivedInvitation]:
    """The caller's pending invitations (to their account's address), newest first."""
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(Invitation.id, Invitation.organisation_id, Organisation.name, Invitation.role,
                   Invitation.created_at, Invitation.expires_at)
            .join(Organisation, Organisation.id == Invitation.organisation_id)
            .where(Invitation.email == _my_email(principal.user_id),
                   Invitation.expires_at > datetime.now(UTC))
            .order_by(Invitation.created_at.desc(), Invitation.id)
        )  # fmt: skip
        return [ReceivedInvitation(*row) for row in rows]


def _session_only(principal: Principal, what: str) -> None:
    if principal.via != "token":  # a key is capped to one organisation: it joins none
        raise RoleEscalation(f"an API key cannot {what} an invitation; log in with the password")


async def accept_invitation(
    services: Services, principal: Principal, invitation_id: str | uuid.UUID
) -> MembershipView:
    """Join the invitation's organisation with its role (switch to it to act in it)."""
    _session_only(principal, "accept")
    found = parse_id(invitation_id, "invitation")
    try:
        async with services.sessionmaker.begin() as session:
            invitation = await session.scalar(
                select(Invitation)
                .where(Invitation.id == found, Invitation.email == _my_email(principal.user_id),
                       Invitation.expires_at > datetime.now(UTC))
                .with_for_update()
            )  # fmt: skip
            if invitation is None:
                raise _missing(found)
            organisation_id, role = invitation.organisation_id, invitation.role
            await session.delete(invitation)
            membership = Membership(
                organisation_id=organisation_id, user_id=principal.user_id, role=role
            )
            session.add(membership)
            await session.flush()
            await session.refresh(membership)
            organisation = await session.get(Organisation, organisation_id)
            assert organisation is not None  # the invitation's foreign key
            await audit.record(session, Action.INVITATION_ACCEPTED,
                               Actor.of(principal).within(organisation_id),
                               target=("user", principal.user_id),
                               details={"role": role, "invitation_id": str(found)})  # fmt: skip
    except IntegrityError:
        raise Conflict("you are already a member of the organisation") from None
    return MembershipView(organisation.id, organisation.name, organisation.personal, role,
                          organisation.created_at)  # fmt: skip


async def decline_invitation(
    services: Services, principal: Principal, invitation_id: str | uuid.UUID
) -> None:
    found = parse_id(invitation_id, "invitation")
    async with services.sessionmaker.begin() as session:
        organisation_id = await session.scalar(
            delete(Invitation)
            .where(Invitation.id == found, Invitation.email == _my_email(principal.user_id))
            .returning(Invitation.organisation_id)
        )
        if organisation_id is None:
            raise _missing(found)
        await audit.record(session, Action.INVITATION_DECLINED,
                           Actor.of(principal).within(organisation_id),
                           target=("invitation", found))  # fmt: skip


async def sweep_lapsed(engine: AsyncEngine) -> int:
    """Delete the invitations past their expiry (the maintenance job)."""
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(Invitation).where(Invitation.expires_at < datetime.now(UTC))
        )
    return result.rowcount
