"""GraphQL types for organisations, members and attached connections."""

from __future__ import annotations

from datetime import datetime

import strawberry
from pasar_core.agents.connections import AttachedConnection as AttachedRow
from pasar_core.organisations.invitations import InvitationView, ReceivedInvitation
from pasar_core.organisations.members import MemberView
from pasar_core.organisations.store import MembershipView


@strawberry.type(description="An organisation you belong to, with your role in it.")
class Organisation:
    id: strawberry.ID
    name: str
    personal: bool
    role: str
    created_at: datetime

    @classmethod
    def of(cls, view: MembershipView) -> Organisation:
        return cls(id=strawberry.ID(str(view.organisation_id)), name=view.name,
                   personal=view.personal, role=view.role, created_at=view.created_at)  # fmt: skip


@strawberry.type(description="A member of the organisation you act in.")
class Member:
    user_id: strawberry.ID
    email: str
    role: str
    joined_at: datetime

    @classmethod
    def of(cls, view: MemberView) -> Member:
        return cls(user_id=strawberry.ID(str(view.user_id)), email=view.email, role=view.role,
                   joined_at=view.joined_at)  # fmt: skip


@strawberry.type(description="A pending invitation of the organisation you act in (admins).")
class Invitation:
    id: strawberry.ID
    email: str
    role: str
    created_at: datetime
    expires_at: datetime
    secret: str | None = strawberry.field(
        default=None,
        description="Only in inviteMember's answer: the single-use secret the invitee needs to "
        "accept. Hand it to them yourself; it is not shown again.",
    )

    @classmethod
    def of(cls, view: InvitationView) -> Invitation:
        return cls(id=strawberry.ID(str(view.id)), email=view.email, role=view.role,
                   created_at=view.created_at, expires_at=view.expires_at,
                   secret=view.secret)  # fmt: skip


@strawberry.type(
    name="ReceivedInvitation",
    description="An invitation you received: an organisation offers a role.",
)
class ReceivedInvitationType:
    id: strawberry.ID
    organisation_id: strawberry.ID
    organisation_name: str
    role: str
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, view: ReceivedInvitation) -> ReceivedInvitationType:
        return cls(id=strawberry.ID(str(view.id)),
                   organisation_id=strawberry.ID(str(view.organisation_id)),
                   organisation_name=view.organisation_name, role=view.role,
                   created_at=view.created_at, expires_at=view.expires_at)  # fmt: skip


@strawberry.type(description="A user's provider grant attached to an agent.")
class AttachedConnection:
    agent_id: strawberry.ID
    provider: str
    user_id: strawberry.ID

    @classmethod
    def of(cls, row: AttachedRow) -> AttachedConnection:
        return cls(agent_id=strawberry.ID(str(row.agent_id)), provider=row.provider,
                   user_id=strawberry.ID(str(row.user_id)))  # fmt: skip
