"""What an organisation's admins change: who is a member and with which role.

The last admin can be neither demoted nor removed (LAST_ADMIN): the organisation's memberships
are locked while the admins are counted, so two admins demoting each other cannot both win.
Access tokens carry the role, so a demoted or removed member's sessions acting in the
organisation end at once (in every process, pasar_core.accounts.revocations); a promotion ends
none, and sessions in the member's other organisations are never ended (so an admin's flips
reach no further than removing the member would). API keys read the role on each use. Every
change leaves an audit row in the organisation (`member.role_changed` with how many sessions it
ended, `member.removed`), naming the member by id. A removed member's custom tools shared with
the organisation become private, and so do a member's demoted below `member` (one
`tool.unshared` row each; pasar_core.custom_tools.sharing). Members join through invitations
(pasar_core.organisations.invitations).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.accounts.service import end_every_session
from pasar_core.agents.connections import end_attachments
from pasar_core.audit import record as audit
from pasar_core.audit.record import Action, Actor
from pasar_core.authz.roles import RANK, Role
from pasar_core.custom_tools.sharing import unshare_owner_tools
from pasar_core.custom_tools.store import sharing_roles
from pasar_core.errors import LastAdmin, NotFound
from pasar_core.organisations.store import parse_id
from pasar_core.services import Services
from pasar_core.storage.models import Membership, User


class RoleInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


@dataclass(frozen=True, slots=True)
class MemberView:
    user_id: uuid.UUID
    email: str
    role: str
    joined_at: datetime


async def list_members(services: Services, organisation_id: uuid.UUID) -> list[MemberView]:
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(Membership.user_id, User.email, Membership.role, Membership.created_at)
            .join(User, User.id == Membership.user_id)
            .where(Membership.organisation_id == organisation_id)
            .order_by(Membership.created_at, User.email)
        )
        return [MemberView(*row) for row in rows]


async def _locked(session: AsyncSession, organisation_id: uuid.UUID) -> list[Membership]:
    return list(
        await session.scalars(
            select(Membership)
            .where(Membership.organisation_id == organisation_id)
            .order_by(Membership.user_id)  # the order erasure locks them in
            .with_for_update()
        )
    )


def _target(memberships: list[Membership], user_id: uuid.UUID) -> Membership:
    for membership in memberships:
        if membership.user_id == user_id:
            return membership
    raise NotFound(f"no member with id {str(user_id)!r}")


def _keep_an_admin(memberships: list[Membership], leaving: Membership) -> None:
    admins = [m for m in memberships if m.role == "admin"]
    if leaving.role == "admin" and len(admins) == 1:
        raise LastAdmin("the organisation's last admin cannot be removed or demoted")


async def set_member_role(
    services: Services,
    organisation_id: uuid.UUID,
    user_id: str | uuid.UUID,
    data: RoleInput,
    *,
    actor: Actor,
) -> MemberView:
    """Change a member's role. A demotion ends their sessions acting in this organisation at
    once (their access tokens carry the stronger role); a promotion ends none (their next
    refreshed token carries it). Their sessions in other organisations are never touched."""
    target_id = parse_id(user_id, "member")
    ended: tuple[list[uuid.UUID], float] = ([], 0.0)
    async with services.sessionmaker.begin() as session:
        memberships = await _locked(session, organisation_id)
        membership = _target(memberships, target_id)
        if membership.role != data.role:
            if data.role != "admin":
                _keep_an_admin(memberships, membership)
            previous, membership.role = membership.role, data.role
            demoted = RANK[data.role] < RANK[previous]
            if demoted:
                ended = await end_every_session(
                    session, services, target_id, organisation_id=organisation_id
                )
            if data.role not in sharing_roles():
                await unshare_owner_tools(session, target_id, organisation_id,
                                          actor, reason="member_demoted")  # fmt: skip
            await audit.record(session, Action.ROLE_CHANGED, actor.within(organisation_id),
                               target=("user", target_id),
                               details={"from": previous, "to": data.role,
                                        "sessions_ended": len(ended[0])})  # fmt: skip
        email = await session.scalar(select(User.email).where(User.id == target_id))
    services.revoked_sessions.add(*ended)
    return MemberView(target_id, email or "", membership.role, membership.created_at)


async def remove_member(
    services: Services, organisation_id: uuid.UUID, user_id: str | uuid.UUID, *, actor: Actor
) -> None:
    """Remove a member (their agents in the organisation stay, owned by them, until deleted;
    the grants they attached to its agents are detached); their sessions acting in this
    organisation end."""
    target_id = parse_id(user_id, "member")
    async with services.sessionmaker.begin() as session:
        memberships = await _locked(session, organisation_id)
        membership = _target(memberships, target_id)
        _keep_an_admin(memberships, membership)
        await session.delete(membership)
        await end_attachments(session, target_id, organisation_id)
        await unshare_owner_tools(session, target_id, organisation_id, actor,
                                  reason="member_removed")  # fmt: skip
        sessions, until = await end_every_session(
            session, services, target_id, organisation_id=organisation_id
        )
        await audit.record(session, Action.MEMBER_REMOVED, actor.within(organisation_id),
                           target=("user", target_id), details={"role": membership.role})  # fmt: skip
    services.revoked_sessions.add(sessions, until)
