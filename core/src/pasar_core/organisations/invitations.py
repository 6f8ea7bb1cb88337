"""Invitations: how a user joins an organisation. An admin invites an email address with a
role; the answer is the same whether or not anybody has registered that address (the
invitation names the address, never a user) and carries the invitation's single-use secret,
shown this once (only its SHA-256 is stored): the admin hands it to the invitee out of band.
Accepting takes the secret and a session (not an API key) of the account with that address:
signing up with somebody's address is not proof of owning it, the secret is. A signed-in
user's list shows only the invitations made while their account already existed (so signing
up with a guessed address reveals nothing pending); declining needs the same session, not the
secret. Team organisations only: a personal organisation has exactly one member. At most
`invitation_cap` are pending per organisation. An invitation lapses after `invitation_ttl_s`;
inviting the same address again replaces its role, expiry and secret; the maintenance job
deletes lapsed ones. An invitation is only as good as its inviter's standing: it is
acceptable only while the admin who made it is still an admin of the organisation (checked
when it is accepted, with their membership locked, so a demotion, a removal or an erasure
racing the acceptance wins or waits; a deleted user's invitations are deleted with them, and
the operator's invitations, which have no inviter, depend on no member). Otherwise accepting is INVITATION_LAPSED and deletes it;
both lists leave such invitations out and the maintenance job deletes them. Each step leaves
an audit row in the organisation (`member.invited`, `member.invitation_accepted`,
`member.invitation_declined`, `member.invitation_revoked`, `member.invitation_lapsed`) naming
the invitation or the user by id, never the address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, and_, delete, exists, func, not_, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from pasar_core.accounts.principal import Principal
from pasar_core.audit import record as audit
from pasar_core.audit.record import Action, Actor
from pasar_core.authz.roles import Role
from pasar_core.errors import Conflict, NotFound, PasarError, RoleEscalation
from pasar_core.organisations.store import MembershipView, parse_id
from pasar_core.services import Services
from pasar_core.storage.models import Invitation, Membership, Organisation, User

MAX_PAGE = 500


class PersonalOrganisation(Conflict):
    """Nobody is invited into a personal organisation: it has exactly one member."""

    code = "PERSONAL_ORGANISATION"


class TooManyInvitations(Conflict):
    code = "TOO_MANY_INVITATIONS"


class InvitationLapsed(PasarError):
    """Its inviter is no longer an admin of the organisation (demoted, removed or erased)."""

    code = "INVITATION_LAPSED"
    status = 410


class AcceptInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: str = Field(min_length=1, max_length=200)
    """The invitation's secret, handed over by the inviting admin."""


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
    secret: str | None = None
    """Only in the answer to `invite`: the one time the secret is shown."""


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


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _inviter_is_admin() -> ColumnElement[bool]:
    """The invitation's inviter is still an admin of its organisation, or it is the
    operator's (no inviter: a deleted user's invitations are deleted with them)."""
    return or_(
        Invitation.invited_by.is_(None),
        exists().where(
            Membership.organisation_id == Invitation.organisation_id,
            Membership.user_id == Invitation.invited_by,
            Membership.role == "admin",
        ),
    )


def _live() -> ColumnElement[bool]:
    return and_(Invitation.expires_at > datetime.now(UTC), _inviter_is_admin())


async def _lock_organisation(
    session: AsyncSession, organisation_id: uuid.UUID, *, exclusive: bool
) -> bool | None:
    """Lock the organisation's row first (the order erasure takes: organisation, then its
    invitations); its `personal`, or None when it does not exist (any more). `exclusive`
    (FOR NO KEY UPDATE) serialises invitations into it; otherwise FOR KEY SHARE, what adding a
    member needs, so erasure deleting it waits for us or we see it gone."""
    statement = select(Organisation.personal).where(Organisation.id == organisation_id)
    return await session.scalar(statement.with_for_update(key_share=True, read=not exclusive))


async def _exists(session: AsyncSession, organisation_id: uuid.UUID) -> bool:
    return await _lock_organisation(session, organisation_id, exclusive=False) is not None


async def invite(
    services: Services, organisation_id: uuid.UUID, data: InvitationInput, *, actor: Actor
) -> InvitationView:
    """Invite `data.email` (CONFLICT only when it is already a member: admins list those);
    the answer carries the invitation's secret, shown only here."""
    email = data.email.strip().lower()
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=services.settings.invitation_ttl_s)
    secret = secrets.token_urlsafe(32)
    async with services.sessionmaker.begin() as session:
        personal = await _lock_organisation(session, organisation_id, exclusive=True)
        if personal is None:
            raise NotFound(f"no organisation with id {str(organisation_id)!r}")
        if personal:
            raise PersonalOrganisation(
                "a personal organisation has exactly one member: create a team organisation "
                "(POST /organisations) and invite people into it"
            )
        member = await session.scalar(
            select(Membership.user_id)
            .join(User, User.id == Membership.user_id)
            .where(Membership.organisation_id == organisation_id, User.email == email)
        )
        if member is not None:
            raise Conflict(f"{email} is already a member")
        pending = await session.scalar(
            select(func.count()).select_from(Invitation)
            .where(Invitation.organisation_id == organisation_id, Invitation.email != email,
                   Invitation.expires_at > now)
        )  # fmt: skip
        cap = services.settings.invitation_cap
        if (pending or 0) >= cap:
            raise TooManyInvitations(
                f"the organisation has {cap} pending invitations, the most it may have: "
                "withdraw some or wait for them to be answered"
            )
        statement = insert(Invitation).values(
            id=uuid.uuid4(), organisation_id=organisation_id, email=email, role=data.role,
            invited_by=actor.user_id, created_at=now, expires_at=expires,
            secret_hash=_hash(secret),
        )  # fmt: skip
        row = (
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[Invitation.organisation_id, Invitation.email],
                    set_={"role": data.role, "invited_by": actor.user_id, "created_at": now,
                          "expires_at": expires, "secret_hash": _hash(secret)},
                ).returning(Invitation.id)
            )
        ).one()  # fmt: skip
        await audit.record(session, Action.MEMBER_INVITED, actor.within(organisation_id),
                           target=("invitation", row.id), details={"role": data.role})  # fmt: skip
    return InvitationView(row.id, email, data.role, now, expires, secret)


async def list_invitations(
    services: Services, organisation_id: uuid.UUID, *, limit: int = 100, offset: int = 0
) -> list[InvitationView]:
    """A page of the organisation's pending invitations, newest first."""
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(Invitation.id, Invitation.email, Invitation.role, Invitation.created_at,
                   Invitation.expires_at)
            .where(Invitation.organisation_id == organisation_id, _live())
            .order_by(Invitation.created_at.desc(), Invitation.id)
            .limit(limit).offset(offset)
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


def _session_only(principal: Principal, what: str) -> None:
    if principal.via != "token":  # a key is capped to one organisation: it joins none
        raise RoleEscalation(f"an API key cannot {what} invitations; log in with the password")


async def my_invitations(
    services: Services, principal: Principal, *, limit: int = 100, offset: int = 0
) -> list[ReceivedInvitation]:
    """A page of the caller's pending invitations made while their account existed (one made
    to an address before anybody signed up with it is reached through its secret alone),
    newest first."""
    _session_only(principal, "list")
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(Invitation.id, Invitation.organisation_id, Organisation.name, Invitation.role,
                   Invitation.created_at, Invitation.expires_at)
            .join(Organisation, Organisation.id == Invitation.organisation_id)
            .join(User, User.email == Invitation.email)
            .where(User.id == principal.user_id, User.created_at < Invitation.created_at,
                   _live())
            .order_by(Invitation.created_at.desc(), Invitation.id)
            .limit(limit).offset(offset)
        )  # fmt: skip
        return [ReceivedInvitation(*row) for row in rows]


async def accept_invitation(
    services: Services, principal: Principal, invitation_id: str | uuid.UUID, secret: str
) -> MembershipView:
    """Join the invitation's organisation with its role (switch to it to act in it). A wrong
    secret, another user's, an expired or an unknown invitation are all NOT_FOUND; the right
    secret of one whose inviter is no longer an admin is INVITATION_LAPSED (and deletes it)."""
    _session_only(principal, "accept")
    found = parse_id(invitation_id, "invitation")
    presented = _hash(secret)
    try:
        joined = await _accept(services, principal, found, presented)
    except IntegrityError:  # a unique clash is handled above: this is the user erased meanwhile
        raise _missing(found) from None
    if joined is None:
        raise InvitationLapsed(
            "the admin who made this invitation is no longer an admin of the organisation: "
            "ask one of its admins for a new invitation"
        )
    return joined


async def _inviter_still_admin(
    session: AsyncSession, organisation_id: uuid.UUID, inviter: uuid.UUID | None
) -> bool:
    """The inviter is still an admin of the organisation, their membership locked FOR SHARE:
    a demotion or removal in flight waits for us, or we wait and read its outcome. No
    inviter: the operator's invitation (a deleted user's are deleted with them)."""
    if inviter is None:
        return True
    statement = select(Membership.role).where(
        Membership.organisation_id == organisation_id, Membership.user_id == inviter
    )
    return await session.scalar(statement.with_for_update(read=True)) == "admin"


async def _lapse(
    session: AsyncSession, principal: Principal, organisation_id: uuid.UUID, found: uuid.UUID
) -> None:
    gone = await session.scalar(
        delete(Invitation).where(Invitation.id == found).returning(Invitation.id)
    )
    if gone is not None:
        await audit.record(session, Action.INVITATION_LAPSED,
                           Actor.of(principal).within(organisation_id),
                           target=("invitation", found),
                           details={"reason": "inviter_not_admin"})  # fmt: skip


async def _accept(
    services: Services, principal: Principal, found: uuid.UUID, presented: str
) -> MembershipView | None:
    """The membership made, or None when the invitation lapsed with its inviter's standing
    (deleted and audited here, so the refusal is committed)."""
    async with services.sessionmaker.begin() as session:
        # Locks in erasure's order: the user, the organisation, then the invitation.
        me = select(User.id).where(User.id == principal.user_id)
        if await session.scalar(me.with_for_update(key_share=True, read=True)) is None:
            raise _missing(found)  # erased meanwhile
        mine = (
            select(Invitation.organisation_id, Invitation.secret_hash, Invitation.invited_by)
            .where(Invitation.id == found, Invitation.email == _my_email(principal.user_id),
                   Invitation.expires_at > datetime.now(UTC))
        )  # fmt: skip
        row = (await session.execute(mine)).one_or_none()
        if row is None or not hmac.compare_digest(row.secret_hash, presented):
            raise _missing(found)
        # The inviter's membership before the organisation: the order erasure locks them in.
        if not await _inviter_still_admin(session, row.organisation_id, row.invited_by):
            await _lapse(session, principal, row.organisation_id, found)
            return None
        if not await _exists(session, row.organisation_id):
            raise _missing(found)  # erased meanwhile
        role = await session.scalar(  # after the organisation: the order erasure locks in
            delete(Invitation)
            .where(
                Invitation.id == found,
                Invitation.secret_hash == presented,
                Invitation.expires_at > datetime.now(UTC),
            )
            .returning(Invitation.role)
        )
        if role is None:
            raise _missing(found)  # accepted, declined or revoked meanwhile
        joined = await session.scalar(
            insert(Membership)
            .values(organisation_id=row.organisation_id, user_id=principal.user_id, role=role)
            .on_conflict_do_nothing(index_elements=[Membership.organisation_id,
                                                    Membership.user_id])
            .returning(Membership.user_id)
        )  # fmt: skip
        if joined is None:
            raise Conflict("you are already a member of the organisation")
        organisation = await session.get(Organisation, row.organisation_id)
        assert organisation is not None  # locked above
        await audit.record(session, Action.INVITATION_ACCEPTED,
                           Actor.of(principal).within(row.organisation_id),
                           target=("user", principal.user_id),
                           details={"role": role, "invitation_id": str(found)})  # fmt: skip
    return MembershipView(organisation.id, organisation.name, organisation.personal, role,
                          organisation.created_at)  # fmt: skip


async def decline_invitation(
    services: Services, principal: Principal, invitation_id: str | uuid.UUID
) -> None:
    _session_only(principal, "decline")
    found = parse_id(invitation_id, "invitation")
    mine = (Invitation.id == found, Invitation.email == _my_email(principal.user_id))
    async with services.sessionmaker.begin() as session:
        organisation_id = await session.scalar(select(Invitation.organisation_id).where(*mine))
        if organisation_id is None or not await _exists(session, organisation_id):
            raise _missing(found)
        if await session.scalar(delete(Invitation).where(*mine).returning(Invitation.id)) is None:
            raise _missing(found)
        await audit.record(session, Action.INVITATION_DECLINED,
                           Actor.of(principal).within(organisation_id),
                           target=("invitation", found))  # fmt: skip


async def sweep_lapsed(engine: AsyncEngine) -> int:
    """Delete the invitations past their expiry or whose inviter is no longer an admin (the
    maintenance job)."""
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(Invitation).where(
                or_(Invitation.expires_at < datetime.now(UTC), not_(_inviter_is_admin()))
            )
        )
    return result.rowcount
