"""Organisation queries and mutations: the same services as REST (pasar_core.organisations)."""

from __future__ import annotations

import strawberry
from pasar_core.accounts.service import SwitchRequest, switch_organisation
from pasar_core.agents.connections import attach_connection, detach_connection
from pasar_core.agents.service import SharingInput, share_agent
from pasar_core.audit.record import Actor
from pasar_core.errors import ValidationFailed
from pasar_core.organisations import invitations, members, store
from pasar_core.schemas import parse_model

from pasar_graphql.accounts.types import AccessToken
from pasar_graphql.agents.types import Agent
from pasar_graphql.context import Info
from pasar_graphql.organisations.types import (
    AttachedConnection,
    Invitation,
    Member,
    Organisation,
    ReceivedInvitationType,
)
from pasar_graphql.permissions import allowed


async def resolve_organisations(info: Info) -> list[Organisation]:
    context = info.context
    principal = await context.principal()
    views = await store.list_memberships(context.services, principal.user_id)
    return [Organisation.of(view) for view in views]


async def resolve_members(info: Info) -> list[Member]:
    context = info.context
    principal = await context.principal()
    views = await members.list_members(context.services, principal.organisation_id)
    return [Member.of(view) for view in views]


async def resolve_create_organisation(info: Info, name: str) -> Organisation:
    context = info.context
    data = parse_model(store.OrganisationInput, {"name": name}, what="organisation")
    view = await store.create_organisation(context.services, await context.principal(), data)
    return Organisation.of(view)


async def resolve_switch_organisation(info: Info, organisation_id: strawberry.ID) -> AccessToken:
    context = info.context
    body = parse_model(SwitchRequest, {"organisation_id": organisation_id}, what="switch")
    pair = await switch_organisation(
        context.services, await context.principal(), body.organisation_id
    )
    return AccessToken.of(pair)


async def resolve_invite_member(info: Info, email: str, role: str = "member") -> Invitation:
    context = info.context
    principal = await context.principal()
    data = parse_model(
        invitations.InvitationInput, {"email": email, "role": role}, what="invitation"
    )
    view = await invitations.invite(
        context.services, principal.organisation_id, data, actor=Actor.of(principal)
    )
    return Invitation.of(view)


def _page(first: int, offset: int) -> None:
    if not 1 <= first <= invitations.MAX_PAGE or not 0 <= offset <= 1_000_000:
        raise ValidationFailed(
            f"first must be between 1 and {invitations.MAX_PAGE}, offset between 0 and 1000000"
        )


async def resolve_invitations(info: Info, first: int = 100, offset: int = 0) -> list[Invitation]:
    _page(first, offset)
    context = info.context
    principal = await context.principal()
    views = await invitations.list_invitations(
        context.services, principal.organisation_id, limit=first, offset=offset
    )
    return [Invitation.of(view) for view in views]


async def resolve_revoke_invitation(info: Info, id: strawberry.ID) -> bool:
    context = info.context
    principal = await context.principal()
    await invitations.revoke_invitation(
        context.services, principal.organisation_id, str(id), actor=Actor.of(principal)
    )
    return True


async def resolve_my_invitations(
    info: Info, first: int = 100, offset: int = 0
) -> list[ReceivedInvitationType]:
    _page(first, offset)
    context = info.context
    views = await invitations.my_invitations(
        context.services, await context.principal(), limit=first, offset=offset
    )
    return [ReceivedInvitationType.of(view) for view in views]


async def resolve_accept_invitation(info: Info, id: strawberry.ID, secret: str) -> Organisation:
    context = info.context
    data = parse_model(invitations.AcceptInput, {"secret": secret}, what="invitation")
    view = await invitations.accept_invitation(
        context.services, await context.principal(), str(id), data.secret
    )
    return Organisation.of(view)


async def resolve_decline_invitation(info: Info, id: strawberry.ID) -> bool:
    context = info.context
    await invitations.decline_invitation(context.services, await context.principal(), str(id))
    return True


async def resolve_set_member_role(info: Info, user_id: strawberry.ID, role: str) -> Member:
    context = info.context
    principal = await context.principal()
    data = parse_model(members.RoleInput, {"role": role}, what="role")
    view = await members.set_member_role(
        context.services, principal.organisation_id, str(user_id), data,
        actor=Actor.of(principal),
    )  # fmt: skip
    return Member.of(view)


async def resolve_remove_member(info: Info, user_id: strawberry.ID) -> bool:
    context = info.context
    principal = await context.principal()
    await members.remove_member(
        context.services, principal.organisation_id, str(user_id), actor=Actor.of(principal)
    )
    return True


async def resolve_share_agent(info: Info, id: strawberry.ID, role: str | None) -> Agent:
    context = info.context
    sharing = parse_model(SharingInput, {"role": role}, what="sharing")
    view = await share_agent(context.services, await context.principal(), str(id), sharing)
    return Agent.of(view)


async def resolve_attach_connection(
    info: Info, agent_id: strawberry.ID, provider: str
) -> AttachedConnection:
    context = info.context
    attached = await attach_connection(
        context.services, await context.principal(), str(agent_id), provider
    )
    return AttachedConnection.of(attached)


async def resolve_detach_connection(info: Info, agent_id: strawberry.ID, provider: str) -> bool:
    context = info.context
    await detach_connection(context.services, await context.principal(), str(agent_id), provider)
    return True


@strawberry.type
class OrganisationQueries:
    organisations = strawberry.field(
        resolver=resolve_organisations, permission_classes=allowed("organisations.list"),
        description="Your organisations with your role in each (`me.organisationId`: the one "
        "this credential acts in).",
    )  # fmt: skip
    members = strawberry.field(
        resolver=resolve_members, permission_classes=allowed("members.list"),
        description="The members of the organisation you act in.",
    )  # fmt: skip
    invitations = strawberry.field(
        resolver=resolve_invitations, permission_classes=allowed("members.invitations"),
        description="Admins: the pending invitations of the organisation you act in.",
    )  # fmt: skip
    my_invitations = strawberry.field(
        resolver=resolve_my_invitations, permission_classes=allowed("invitations.mine"),
        description="A session's: your pending invitations made while your account existed "
        "(one made before you signed up is reached through its secret).",
    )  # fmt: skip


@strawberry.type
class OrganisationMutations:
    create_organisation = strawberry.mutation(
        resolver=resolve_create_organisation, permission_classes=allowed("organisations.create"),
        description="Create an organisation; you are its admin (switch to it to act in it).",
    )  # fmt: skip
    switch_organisation = strawberry.mutation(
        resolver=resolve_switch_organisation,
        permission_classes=allowed("accounts.switch_organisation"),
        description="A new session acting in another of your organisations.",
    )  # fmt: skip
    invite_member = strawberry.mutation(
        resolver=resolve_invite_member, permission_classes=allowed("members.invite"),
        description="Admins of a team organisation: invite an email address with a role (the "
        "same answer whether or not it is registered); the answer's `secret` (shown once) is "
        "what the invitee needs to accept.",
    )  # fmt: skip
    revoke_invitation = strawberry.mutation(
        resolver=resolve_revoke_invitation,
        permission_classes=allowed("members.revoke_invitation"),
        description="Admins: withdraw a pending invitation.",
    )  # fmt: skip
    accept_invitation = strawberry.mutation(
        resolver=resolve_accept_invitation, permission_classes=allowed("invitations.accept"),
        description="Join the organisation with the invitation's role: its secret and a session "
        "(not an API key) of the invited address.",
    )  # fmt: skip
    decline_invitation = strawberry.mutation(
        resolver=resolve_decline_invitation, permission_classes=allowed("invitations.decline"),
        description="Decline an invitation you received (a session, not an API key).",
    )  # fmt: skip
    set_member_role = strawberry.mutation(
        resolver=resolve_set_member_role, permission_classes=allowed("members.set_role"),
        description="Admins: change a member's role (never the last admin's); a demotion ends "
        "their sessions in this organisation.",
    )  # fmt: skip
    remove_member = strawberry.mutation(
        resolver=resolve_remove_member, permission_classes=allowed("members.remove"),
        description="Admins: remove a member (never the last admin); their sessions in this "
        "organisation end.",
    )  # fmt: skip
    share_agent = strawberry.mutation(
        resolver=resolve_share_agent, permission_classes=allowed("agents.share"),
        description="Share your agent with its organisation with a role, or null: private.",
    )  # fmt: skip
    attach_connection = strawberry.mutation(
        resolver=resolve_attach_connection,
        permission_classes=allowed("agents.connections.attach"),
        description="Attach your provider grant to an agent: other members' runs of it use it.",
    )  # fmt: skip
    detach_connection = strawberry.mutation(
        resolver=resolve_detach_connection,
        permission_classes=allowed("agents.connections.detach"),
        description="Detach the grant attached to an agent (who attached it, or the owner).",
    )  # fmt: skip
