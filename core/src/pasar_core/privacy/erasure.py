"""`deleteMyAccount`: erasure of the caller and everything that names them.

In order: the password is checked; an organisation the user is the last admin of keeps its
other members, so erasure is refused (LAST_ADMIN, naming the organisations) unless the user is
its only member (then the organisation goes too, with its agents and runs); the user's grants
are revoked at their providers and deleted; their runs still waiting or running are told to
stop and their rq jobs removed; their stored files are deleted; then, in one transaction, their
sessions end, the user row goes (every table holding their id cascades: memberships, agents,
secrets, runs and events, API keys, tokens, grants, custom tools, knowledge and vectors,
idempotency keys), the pending invitations addressed to their email go, their custom tools'
revision counter goes, and one `user.deleted` row is
written that holds the user's id and no other personal data (not the client's address). A
personal organisation of theirs that stays (it has other members) loses its name, their email.

What stays, by design: audit rows (append-only; they hold ids, never names or emails) and the
session denylist rows (`revoked_sessions`: the user's id and session ids), which refuse the
user's still-unexpired access tokens and disappear when those expire.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row, Select, delete, or_, select, update

from pasar_core.accounts.passwords import verify_password
from pasar_core.accounts.principal import Principal
from pasar_core.accounts.service import WrongPassword, end_every_session
from pasar_core.audit import record as audit
from pasar_core.audit.record import Action, Actor
from pasar_core.errors import LastAdmin, Unauthenticated
from pasar_core.executions import store
from pasar_core.executions.status import ExecutionStatus
from pasar_core.oauth.tokens import disconnect
from pasar_core.objects import build_object_store
from pasar_core.services import Services
from pasar_core.storage.models import (
    AuthToken,
    Execution,
    Invitation,
    Membership,
    Organisation,
    ToolRevision,
    User,
)

if TYPE_CHECKING:
    from pasar_core.executions.runtime import Runs

log = logging.getLogger("pasar.privacy")
FILE_PAGE = 1000
FORMER_PERSONAL = "personal organisation of a deleted account"


class ErasureRequest(BaseModel):
    """The caller's own password: erasure names no user, so nobody else can be erased."""

    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1024)


def _memberships_of_my_organisations(user_id: uuid.UUID) -> Select[uuid.UUID, uuid.UUID, str]:
    mine = select(Membership.organisation_id).where(Membership.user_id == user_id)
    return (
        select(Membership.organisation_id, Membership.user_id, Membership.role)
        .where(Membership.organisation_id.in_(mine))
        .order_by(Membership.organisation_id, Membership.user_id)
    )


def _organisations_to_delete(
    user_id: uuid.UUID, rows: Sequence[Row[uuid.UUID, uuid.UUID, str]]
) -> list[uuid.UUID]:
    """The organisations only this user is in; refuses when they are the last admin of one
    that has other members."""
    members: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = {}
    for row in rows:
        members.setdefault(row.organisation_id, []).append((row.user_id, row.role))
    alone = [org for org, people in members.items() if len(people) == 1]
    blocked = sorted(
        str(org)
        for org, people in members.items()
        if len(people) > 1
        and (user_id, "admin") in people
        and sum(role == "admin" for _, role in people) == 1
    )
    if blocked:
        raise LastAdmin(
            "you are the last admin of organisations with other members: make another member "
            "admin first (or remove the members)",
            details={"organisations": blocked},
        )
    return alone


async def _stop_runs(services: Services, runs: Runs | None, user_id: uuid.UUID,
                     organisations: list[uuid.UUID]) -> None:  # fmt: skip
    """Tell the user's waiting and running runs (and those of organisations going away) to
    stop, and take their jobs off the rq queue."""
    active = [s.value for s in ExecutionStatus if not s.terminal]
    async with services.sessionmaker() as session:
        ids = list(
            await session.scalars(
                select(Execution.id).where(
                    Execution.status.in_(active),
                    (Execution.user_id == user_id) | Execution.organisation_id.in_(organisations),
                )
            )
        )
    if runs is None:
        return
    for execution_id in ids:
        await store.request_cancel(runs.engine, execution_id)
        runs.cancel_local(execution_id)
    if runs.rq is not None and ids:
        await runs.rq.discard(ids)


async def _delete_files(services: Services, user_id: uuid.UUID) -> int:
    files = services.object_store or build_object_store(services.settings)
    deleted = 0
    while True:
        found = await files.list(str(user_id), "", limit=FILE_PAGE)
        gone = 0
        for item in found:
            gone += int(await files.delete(str(user_id), item.key))
        deleted += gone
        if gone == 0:  # nothing left, or nothing more could be deleted: never loop forever
            return deleted


async def delete_my_account(
    services: Services, runs: Runs | None, principal: Principal, request: ErasureRequest
) -> uuid.UUID:
    """Erase the caller (see the module doc); returns their (former) id."""
    user_id = principal.user_id
    async with services.sessionmaker() as session:
        password_hash = await session.scalar(select(User.password_hash).where(User.id == user_id))
    if password_hash is None:
        raise Unauthenticated("the account no longer exists")
    if not await verify_password(password_hash, request.password):
        raise WrongPassword("the password is wrong")
    async with services.sessionmaker() as session:  # refused early, before anything is undone
        rows = (await session.execute(_memberships_of_my_organisations(user_id))).all()
    organisations = _organisations_to_delete(user_id, rows)
    actor = replace(Actor.of(principal), source=None)  # the client's address is personal data
    async with services.sessionmaker() as session:
        providers = list(
            await session.scalars(select(AuthToken.provider).where(AuthToken.user_id == user_id))
        )
    revoked = {provider: await disconnect(services, user_id, provider, actor=actor)
               for provider in providers}  # fmt: skip
    await _stop_runs(services, runs, user_id, organisations)
    files = await _delete_files(services, user_id)
    async with services.sessionmaker.begin() as session:
        user = await session.scalar(select(User).where(User.id == user_id).with_for_update())
        if user is None:
            raise Unauthenticated("the account no longer exists")
        # Decided again with the organisations' memberships locked (in a stable order, the
        # locks members.py takes): two admins erasing themselves, or an admin demoted or
        # removed meanwhile, wait for each other and the second sees the first's outcome.
        locked = _memberships_of_my_organisations(user_id).with_for_update()
        organisations = _organisations_to_delete(user_id, (await session.execute(locked)).all())
        sessions, until = await end_every_session(session, services, user_id)
        if organisations:
            await session.execute(delete(Organisation).where(Organisation.id.in_(organisations)))
        await session.execute(delete(ToolRevision).where(ToolRevision.scope == f"user:{user_id}"))
        await session.execute(delete(Invitation).where(
            or_(Invitation.email == user.email, Invitation.invited_by == user_id)
        ))  # fmt: skip
        await session.execute(  # a personal organisation that stays (others are in it)
            update(Organisation)
            .where(Organisation.created_by == user_id, Organisation.personal.is_(True))
            .values(name=FORMER_PERSONAL)
        )
        await session.delete(user)
        await audit.record(
            session, Action.USER_DELETED, actor, target=("user", user_id),
            details={"erasure": "self", "personal_data": "none",
                     "organisations_deleted": [str(o) for o in organisations],
                     "grants_revoked": sorted(p for p, ok in revoked.items() if ok),
                     "files_deleted": files},
        )  # fmt: skip
    services.revoked_sessions.add(sessions, until)
    log.info("user %s erased their account", user_id)
    return user_id
