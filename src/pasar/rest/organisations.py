"""Organisations, switching between them, members (admins), and sharing agents."""

from __future__ import annotations

import uuid
from datetime import datetime

from pasar_core.accounts import service as accounts
from pasar_core.agents import connections
from pasar_core.agents import service as agents
from pasar_core.audit.record import Actor
from pasar_core.organisations import invitations, members, store
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.models import AgentOut, TokenOut
from pasar.rest.requests import caller, query_int, read_model, services_of
from pasar.rest.responses import json_response


class OrganisationOut(BaseModel):
    id: uuid.UUID
    name: str
    personal: bool
    role: str
    """Your role in it."""
    created_at: datetime

    @classmethod
    def of(cls, view: store.MembershipView) -> OrganisationOut:
        return cls(id=view.organisation_id, name=view.name, personal=view.personal,
                   role=view.role, created_at=view.created_at)  # fmt: skip


class OrganisationListOut(BaseModel):
    organisations: list[OrganisationOut]
    current: uuid.UUID
    """The organisation this credential acts in."""


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    role: str
    joined_at: datetime

    @classmethod
    def of(cls, view: members.MemberView) -> MemberOut:
        return cls(user_id=view.user_id, email=view.email, role=view.role,
                   joined_at=view.joined_at)  # fmt: skip


class MemberListOut(BaseModel):
    members: list[MemberOut]


class InvitationOut(BaseModel):
    id: uuid.UUID
    email: str
    role: str
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, view: invitations.InvitationView) -> InvitationOut:
        return cls(id=view.id, email=view.email, role=view.role, created_at=view.created_at,
                   expires_at=view.expires_at)  # fmt: skip


class CreatedInvitationOut(InvitationOut):
    secret: str
    """The single-use secret the invitee needs to accept: shown only in this answer. Hand it to
    them yourself (pasar sends no email)."""

    @classmethod
    def of_created(cls, view: invitations.InvitationView) -> CreatedInvitationOut:
        assert view.secret is not None  # invite() always returns it
        return cls(**InvitationOut.of(view).model_dump(), secret=view.secret)


class InvitationListOut(BaseModel):
    invitations: list[InvitationOut]


class ReceivedInvitationOut(BaseModel):
    id: uuid.UUID
    organisation_id: uuid.UUID
    organisation_name: str
    role: str
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, view: invitations.ReceivedInvitation) -> ReceivedInvitationOut:
        return cls(id=view.id, organisation_id=view.organisation_id,
                   organisation_name=view.organisation_name, role=view.role,
                   created_at=view.created_at, expires_at=view.expires_at)  # fmt: skip


class ReceivedInvitationListOut(BaseModel):
    invitations: list[ReceivedInvitationOut]


class AttachedConnectionOut(BaseModel):
    agent_id: uuid.UUID
    provider: str
    user_id: uuid.UUID


async def list_organisations(request: Request) -> Response:
    principal = await caller(request)
    views = await store.list_memberships(services_of(request), principal.user_id)
    return json_response(
        OrganisationListOut(
            organisations=[OrganisationOut.of(v) for v in views],
            current=principal.organisation_id,
        )
    )


async def create_organisation(request: Request) -> Response:
    principal = await caller(request)
    data = await read_model(request, store.OrganisationInput)
    view = await store.create_organisation(services_of(request), principal, data)
    return json_response(OrganisationOut.of(view), 201)


async def switch_organisation(request: Request) -> Response:
    principal = await caller(request)
    body = await read_model(request, accounts.SwitchRequest)
    pair = await accounts.switch_organisation(services_of(request), principal, body.organisation_id)
    return json_response(TokenOut.of(pair))


async def list_members(request: Request) -> Response:
    principal = await caller(request)
    views = await members.list_members(services_of(request), principal.organisation_id)
    return json_response(MemberListOut(members=[MemberOut.of(v) for v in views]))


async def invite(request: Request) -> Response:
    principal = await caller(request)
    data = await read_model(request, invitations.InvitationInput)
    view = await invitations.invite(
        services_of(request), principal.organisation_id, data, actor=Actor.of(principal)
    )
    return json_response(CreatedInvitationOut.of_created(view), 201)


def _page(request: Request) -> tuple[int, int]:
    limit = query_int(request, "limit", 100, low=1, high=invitations.MAX_PAGE)
    return limit, query_int(request, "offset", 0, low=0, high=1_000_000)


async def list_invitations(request: Request) -> Response:
    principal = await caller(request)
    limit, offset = _page(request)
    views = await invitations.list_invitations(
        services_of(request), principal.organisation_id, limit=limit, offset=offset
    )
    return json_response(InvitationListOut(invitations=[InvitationOut.of(v) for v in views]))


async def revoke_invitation(request: Request) -> Response:
    principal = await caller(request)
    await invitations.revoke_invitation(
        services_of(request), principal.organisation_id, request.path_params["invitation_id"],
        actor=Actor.of(principal),
    )  # fmt: skip
    return Response(status_code=204)


async def my_invitations(request: Request) -> Response:
    principal = await caller(request)
    limit, offset = _page(request)
    views = await invitations.my_invitations(
        services_of(request), principal, limit=limit, offset=offset
    )
    return json_response(
        ReceivedInvitationListOut(invitations=[ReceivedInvitationOut.of(v) for v in views])
    )


async def accept_invitation(request: Request) -> Response:
    principal = await caller(request)
    body = await read_model(request, invitations.AcceptInput)
    view = await invitations.accept_invitation(
        services_of(request), principal, request.path_params["invitation_id"], body.secret
    )
    return json_response(OrganisationOut.of(view))


async def decline_invitation(request: Request) -> Response:
    principal = await caller(request)
    await invitations.decline_invitation(
        services_of(request), principal, request.path_params["invitation_id"]
    )
    return Response(status_code=204)


async def set_member_role(request: Request) -> Response:
    principal = await caller(request)
    data = await read_model(request, members.RoleInput)
    view = await members.set_member_role(
        services_of(request), principal.organisation_id, request.path_params["user_id"], data,
        actor=Actor.of(principal),
    )  # fmt: skip
    return json_response(MemberOut.of(view))


async def remove_member(request: Request) -> Response:
    principal = await caller(request)
    await members.remove_member(
        services_of(request), principal.organisation_id, request.path_params["user_id"],
        actor=Actor.of(principal),
    )  # fmt: skip
    return Response(status_code=204)


async def share_agent(request: Request) -> Response:
    principal = await caller(request)
    body = await read_model(request, agents.SharingInput)
    view = await agents.share_agent(
        services_of(request), principal, request.path_params["agent_id"], body
    )
    return json_response(AgentOut.of(view))


async def attach_connection(request: Request) -> Response:
    principal = await caller(request)
    params = request.path_params
    attached = await connections.attach_connection(
        services_of(request), principal, params["agent_id"], params["provider"]
    )
    return json_response(
        AttachedConnectionOut(
            agent_id=attached.agent_id, provider=attached.provider, user_id=attached.user_id
        )
    )


async def detach_connection(request: Request) -> Response:
    principal = await caller(request)
    params = request.path_params
    await connections.detach_connection(
        services_of(request), principal, params["agent_id"], params["provider"]
    )
    return Response(status_code=204)
