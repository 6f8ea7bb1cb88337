"""Sharing a custom tool with an organisation, and taking it back.

A tool is shared with the organisation its owner acts in (one at a time: sharing it while
acting in another moves it there). Its owner shares it (`tools.share`); its owner or an admin
of that organisation makes it private again (`tools.unshare`). Both raise the counters of the
organisations concerned, so every process's overlay registries (`custom_tools.overlay`) drop
it at once: an agent of another member that names it is then refused at save
(`UNKNOWN_TOOLS`) and at run (`TOOL_NOT_FOUND`), never run with it.

A tool stays shared only while its owner may share it there: removing the owner from the
organisation, or demoting them below `member`, makes their tools shared with it private in
the same transaction (`unshare_owner_tools`), so an edit they make from elsewhere afterwards
reaches no one; `store.usable_by` also asks for the owner's current membership.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.accounts.principal import Principal
from pasar_core.agents.service import SharingInput
from pasar_core.audit import record as audit
from pasar_core.audit.record import Action, Actor
from pasar_core.custom_tools.store import (
    bump_revision,
    checked_tool,
    organisation_scope,
    parse_tool_ref,
)
from pasar_core.errors import ToolDefinitionInvalid
from pasar_core.services import Services
from pasar_core.storage.models import CustomTool


def _base_id(raw_id: str) -> str:
    ref = parse_tool_ref(raw_id)
    if ref.version is not None:
        raise ToolDefinitionInvalid(
            "a tool is shared with all its versions: name it without @version",
            details={"errors": [{"path": "/id", "message": "no @version"}]},
        )
    return ref.base


async def share_tool(
    services: Services, principal: Principal, raw_id: str, sharing: SharingInput
) -> None:
    """Share the caller's tool with the organisation they act in, members acting on it with
    at most `sharing.role`; `role: null` makes it private (owner only, like agents)."""
    tool_id = _base_id(raw_id)
    async with services.sessionmaker.begin() as session:
        tool = await checked_tool(session, principal, tool_id, operation="tools.share", lock=True)
        touched: set[uuid.UUID] = set()
        if tool.shared_organisation_id is not None:
            touched.add(tool.shared_organisation_id)
        if sharing.role is None:
            tool.shared_organisation_id, tool.shared_role = None, None
        else:
            tool.shared_organisation_id, tool.shared_role = principal.organisation_id, sharing.role
            touched.add(principal.organisation_id)
        tool.updated_at = datetime.now(UTC)
        for organisation_id in sorted(touched):
            await bump_revision(session, organisation_scope(organisation_id))
        action = Action.TOOL_SHARED if sharing.role is not None else Action.TOOL_UNSHARED
        await audit.record(session, action, Actor.of(principal), target=("tool", tool_id),
                           details={"role": sharing.role})  # fmt: skip


async def unshare_tool(services: Services, principal: Principal, raw_id: str) -> None:
    """Make a tool shared with the caller's organisation private again (its owner, or an
    admin of that organisation)."""
    tool_id = _base_id(raw_id)
    async with services.sessionmaker.begin() as session:
        tool = await checked_tool(session, principal, tool_id, operation="tools.unshare", lock=True)
        organisation_id = tool.shared_organisation_id
        tool.shared_organisation_id, tool.shared_role = None, None
        tool.updated_at = datetime.now(UTC)
        if organisation_id is not None:
            await bump_revision(session, organisation_scope(organisation_id))
        await audit.record(session, Action.TOOL_UNSHARED, Actor.of(principal),
                           target=("tool", tool_id),
                           details={"owner": tool.owner_id == principal.user_id})  # fmt: skip


async def unshare_owner_tools(
    session: AsyncSession, owner_id: uuid.UUID, organisation_id: uuid.UUID, actor: Actor,
    *, reason: str,
) -> list[str]:  # fmt: skip
    """Make every tool of `owner_id` shared with the organisation private (the owner was
    removed from it or demoted below the role that may share); one `tool.unshared` row each
    in the organisation. The ids made private."""
    tool_ids = list(
        await session.scalars(
            update(CustomTool)
            .where(
                CustomTool.owner_id == owner_id,
                CustomTool.shared_organisation_id == organisation_id,
            )
            .values(shared_organisation_id=None, shared_role=None, updated_at=datetime.now(UTC))
            .returning(CustomTool.tool_id)
        )
    )
    if not tool_ids:
        return []
    await bump_revision(session, organisation_scope(organisation_id))
    for tool_id in sorted(tool_ids):
        await audit.record(session, Action.TOOL_UNSHARED, actor.within(organisation_id),
                           target=("tool", tool_id),
                           details={"owner": False, "reason": reason,
                                    "tool_owner": str(owner_id)})  # fmt: skip
    return tool_ids
