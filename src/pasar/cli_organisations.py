"""`pasar orgs`: the operator's view of organisations and their members (the same services
as the admins' REST and GraphQL operations: members join by invitation only, the last admin
stays, a demotion or removal ends the member's sessions in the organisation, each change leaves
an audit row of the organisation, `actor_via` cli)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import TYPE_CHECKING

import click

from pasar.cli_support import emit, friendly_errors, json_flag, run

if TYPE_CHECKING:
    from pasar_core.organisations.invitations import InvitationView
    from pasar_core.organisations.members import MemberView
    from pasar_core.organisations.store import MembershipView
    from pasar_core.services import Services

ROLE_CHOICE = click.Choice(["admin", "member", "viewer"])


@click.group("orgs")
def organisations() -> None:
    """Organisations and their members."""


@organisations.command("list")
@click.argument("email")
@json_flag
@friendly_errors
def orgs_list(email: str, as_json: bool) -> None:
    """The organisations of a user, with their role in each."""
    from pasar_core.accounts import service as accounts
    from pasar_core.organisations.store import list_memberships
    from pasar_core.settings import Settings

    from pasar.lifecycle import running_services

    async def collect() -> list[MembershipView]:
        async with running_services(Settings.from_env()) as services:
            user = await accounts.user_by_email(services, email)
            return await list_memberships(services, user.id)

    views = run(collect())
    emit(
        as_json,
        [dataclasses.asdict(v) for v in views],
        *(
            f"{v.organisation_id}  {v.role:<6}  {v.name}{' (personal)' if v.personal else ''}"
            for v in views
        ),
    )


@organisations.group("members")
def members() -> None:
    """Members of one organisation (by its id)."""


async def _user_id(services: Services, email: str) -> uuid.UUID:
    from pasar_core.accounts import service as accounts

    return (await accounts.user_by_email(services, email)).id


def _line(view: MemberView) -> str:
    return f"{view.user_id}  {view.role:<6}  {view.email}"


@members.command("list")
@click.argument("organisation_id", type=click.UUID)
@json_flag
@friendly_errors
def members_list(organisation_id: uuid.UUID, as_json: bool) -> None:
    """The organisation's members and their roles."""
    from pasar_core.organisations.members import list_members
    from pasar_core.settings import Settings

    from pasar.lifecycle import running_services

    async def collect() -> list[MemberView]:
        async with running_services(Settings.from_env()) as services:
            return await list_members(services, organisation_id)

    views = run(collect())
    emit(as_json, [dataclasses.asdict(v) for v in views], *(_line(v) for v in views))


@members.command("invite")
@click.argument("organisation_id", type=click.UUID)
@click.argument("email")
@click.option("--role", type=ROLE_CHOICE, default="member", show_default=True)
@json_flag
@friendly_errors
def members_invite(organisation_id: uuid.UUID, email: str, role: str, as_json: bool) -> None:
    """Invite an email address (registered or not) into a team organisation; prints the
    invitation's secret once: hand it to the invitee, who needs it to accept."""
    from pasar_core.audit.record import CLI
    from pasar_core.organisations.invitations import InvitationInput, invite
    from pasar_core.schemas import parse_model
    from pasar_core.settings import Settings

    from pasar.lifecycle import running_services

    data = parse_model(InvitationInput, {"email": email, "role": role})

    async def send() -> InvitationView:
        async with running_services(Settings.from_env()) as services:
            return await invite(services, organisation_id, data, actor=CLI)

    view = run(send())
    emit(as_json, dataclasses.asdict(view),
         f"invited {view.email} as {view.role} until {view.expires_at:%Y-%m-%d %H:%M} UTC "
         f"(invitation {view.id})",
         f"secret (shown once; the invitee accepts with it): {view.secret}")  # fmt: skip


@members.command("invitations")
@click.argument("organisation_id", type=click.UUID)
@json_flag
@friendly_errors
def members_invitations(organisation_id: uuid.UUID, as_json: bool) -> None:
    """The organisation's pending invitations."""
    from pasar_core.organisations.invitations import list_invitations
    from pasar_core.settings import Settings

    from pasar.lifecycle import running_services

    async def collect() -> list[InvitationView]:
        async with running_services(Settings.from_env()) as services:
            return await list_invitations(services, organisation_id)

    views = run(collect())
    emit(
        as_json,
        [{k: x for k, x in dataclasses.asdict(v).items() if k != "secret"} for v in views],
        *(f"{v.id}  {v.role:<6}  {v.email}  until {v.expires_at:%Y-%m-%d}" for v in views),
    )


@members.command("set-role")
@click.argument("organisation_id", type=click.UUID)
@click.argument("email")
@click.argument("role", type=ROLE_CHOICE)
@json_flag
@friendly_errors
def members_set_role(organisation_id: uuid.UUID, email: str, role: str, as_json: bool) -> None:
    """Change a member's role (never the last admin's); a demotion ends their sessions here."""
    from pasar_core.audit.record import CLI
    from pasar_core.organisations.members import RoleInput, set_member_role
    from pasar_core.schemas import parse_model
    from pasar_core.settings import Settings

    from pasar.lifecycle import running_services

    data = parse_model(RoleInput, {"role": role})

    async def change() -> MemberView:
        async with running_services(Settings.from_env()) as services:
            user_id = await _user_id(services, email)
            return await set_member_role(services, organisation_id, user_id, data, actor=CLI)

    view = run(change())
    emit(as_json, dataclasses.asdict(view), _line(view))


@members.command("remove")
@click.argument("organisation_id", type=click.UUID)
@click.argument("email")
@json_flag
@friendly_errors
def members_remove(organisation_id: uuid.UUID, email: str, as_json: bool) -> None:
    """Remove a member (never the last admin); their sessions in it end."""
    from pasar_core.audit.record import CLI
    from pasar_core.organisations.members import remove_member
    from pasar_core.settings import Settings

    from pasar.lifecycle import running_services

    async def remove() -> None:
        async with running_services(Settings.from_env()) as services:
            user_id = await _user_id(services, email)
            await remove_member(services, organisation_id, user_id, actor=CLI)

    run(remove())
    emit(as_json, {"removed": email, "organisation_id": str(organisation_id)},
         f"removed {email}; their sessions in the organisation ended")  # fmt: skip
