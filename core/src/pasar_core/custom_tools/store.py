"""Custom tools in the database: register, add versions, read, delete; one owner each.

- A namespace is claimed in `tool_namespaces` by the first registration in it; registrations by
  anyone else in it are `TOOL_ID_TAKEN`, and so are namespaces of installed and sandboxed plugins.
- Every version is kept (`custom_tool_versions`), so agents pinning `id@2` keep working after
  an update; `custom_tools.latest_version` is what `id` alone means.
- The catalogue table `tools` gets one row per id an agent may name (`id` and `id@N`), because
  `agent_tools` references it; `catalog.sync_tools` leaves these rows alone.
- Each change raises the owner's counter in `tool_revisions`, which `custom_tools.overlay`
  compares to rebuild its cached registries in every process.

Another user's private tool, or one shared with another organisation, is reported as missing
(`TOOL_NOT_FOUND`), never as someone else's. A tool shared with the caller's organisation is
read, changed and used as the policy table says (`check_tool`; `custom_tools.sharing`); each
change of a shared tool also raises its organisation's counter (`organisation_scope`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.accounts.principal import Principal
from pasar_core.audit import record as audit
from pasar_core.audit.record import Action, Actor
from pasar_core.authz.checks import check_resource, may
from pasar_core.authz.policy import rule
from pasar_core.authz.roles import ROLES, at_least
from pasar_core.custom_tools.definition import ToolDefinition, check_definition
from pasar_core.custom_tools.ids import ToolRef, parse_base_id, parse_ref
from pasar_core.errors import (
    NotFound,
    ToolDefinitionInvalid,
    ToolExists,
    ToolIdTaken,
    ToolInUse,
    ToolNotFound,
)
from pasar_core.registry import Registry
from pasar_core.services import Services
from pasar_core.storage.models import (
    Agent,
    AgentTool,
    CustomTool,
    CustomToolVersion,
    Membership,
    Tool,
    ToolNamespace,
    ToolRevision,
)

SANDBOXED_SCOPE = "sandboxed"
MAX_LISTED = 500


def sharing_roles() -> list[str]:
    """The roles an owner needs in an organisation for their tools to stay shared with it:
    those that may share (`tools.share`)."""
    needed = rule("tools.share").own
    return [role for role in ROLES if needed is not None and at_least(role, needed)]


def owner_scope(owner_id: uuid.UUID) -> str:
    return f"user:{owner_id}"


def organisation_scope(organisation_id: uuid.UUID) -> str:
    """The counter of the tools shared with an organisation."""
    return f"organisation:{organisation_id}"


def shared_role_of(tool: CustomTool) -> str | None:
    """The role it is shared with (None: private; a deleted organisation leaves it private)."""
    return tool.shared_role if tool.shared_organisation_id is not None else None


def check_tool(principal: Principal, operation: str, tool: CustomTool) -> None:
    """The policy's answer for this tool: TOOL_NOT_FOUND when the caller may not see it."""
    owner = tool.owner_id == principal.user_id
    try:
        check_resource(
            principal, operation, what="tool", resource_id=tool.id,
            organisation_id=principal.organisation_id if owner
            else (tool.shared_organisation_id or tool.id),
            owner_id=tool.owner_id, shared_role=None if owner else shared_role_of(tool),
        )  # fmt: skip
    except NotFound:
        raise ToolNotFound(tool.tool_id) from None


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One version of a custom tool, as stored."""

    tool_id: str
    version: int
    latest_version: int
    owner_id: uuid.UUID
    definition: ToolDefinition
    digest: str
    version_id: uuid.UUID
    created_at: datetime
    shared_organisation_id: uuid.UUID | None = None
    shared_role: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.tool_id}@{self.version}"


def digest_of(definition: ToolDefinition) -> str:
    canonical = json.dumps(
        definition.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


async def bump_revision(session: AsyncSession, scope: str) -> None:
    statement = insert(ToolRevision).values(scope=scope, revision=1)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ToolRevision.scope], set_={"revision": ToolRevision.revision + 1}
        )
    )


async def revisions(session: AsyncSession, scopes: Sequence[str]) -> tuple[int, ...]:
    rows = await session.execute(
        select(ToolRevision.scope, ToolRevision.revision).where(ToolRevision.scope.in_(scopes))
    )
    found = {scope: revision for scope, revision in rows.all()}
    return tuple(found.get(scope, 0) for scope in scopes)


def installed_namespaces(registry: Registry) -> set[str]:
    return {tool.spec.service for tool in registry.tools.values()} | set(registry.families)


async def _claim_namespace(
    session: AsyncSession, services: Services, owner_id: uuid.UUID, ref: ToolRef
) -> None:
    taken = ToolIdTaken(
        f"the namespace {ref.namespace!r} belongs to another publisher; choose another "
        "(custom tool ids are namespace:name, and each namespace has one owner)",
        details={"namespace": ref.namespace},
    )
    if ref.namespace in installed_namespaces(services.registry):
        raise taken
    sandboxed = await session.scalar(
        select(Tool.id)
        .where(Tool.source == "sandboxed", Tool.id.startswith(f"{ref.namespace}:"))
        .limit(1)
    )
    if sandboxed is not None:
        raise taken
    await session.execute(
        insert(ToolNamespace)
        .values(namespace=ref.namespace, owner_id=owner_id)
        .on_conflict_do_nothing(index_elements=[ToolNamespace.namespace])
    )
    owner = await session.scalar(
        select(ToolNamespace.owner_id).where(ToolNamespace.namespace == ref.namespace)
    )
    if owner != owner_id:
        raise taken


def _catalogue_row(row_id: str, definition: ToolDefinition, owner_id: uuid.UUID) -> dict[str, Any]:
    namespace = row_id.split(":", 1)[0]
    return {
        "id": row_id,
        "family": namespace,
        "plugin": "custom",
        "title": definition.title,
        "description": definition.description,
        "input_schema": definition.input_schema,
        "output_schema": definition.output_schema,
        "auth_provider": None,
        "scopes": [],
        "effect": definition.effect,
        "available": True,
        "source": "custom",
        "owner_id": owner_id,
    }


async def _write_catalogue(
    session: AsyncSession, tool_id: str, version: int, definition: ToolDefinition, owner: uuid.UUID
) -> None:
    rows = [
        _catalogue_row(tool_id, definition, owner),
        _catalogue_row(f"{tool_id}@{version}", definition, owner),
    ]
    statement = insert(Tool).values(rows)
    columns = ("title", "description", "input_schema", "output_schema", "effect", "available")
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Tool.id],
            set_={c: statement.excluded[c] for c in columns} | {"updated_at": func.now()},
            where=and_(Tool.source == "custom", Tool.owner_id == owner),
        )
    )


def _checked(services: Services, definition: ToolDefinition) -> ToolRef:
    ref = parse_base_id(definition.id)
    check_definition(definition, services.settings.sandbox, services.settings.allow_private_hosts)
    return ref


async def register(
    services: Services, principal: Principal, definition: ToolDefinition
) -> StoredVersion:
    """Version 1 of a new tool (`TOOL_EXISTS` if you have one with this id)."""
    ref = _checked(services, definition)
    digest = digest_of(definition)
    try:
        async with services.sessionmaker.begin() as session:
            await _claim_namespace(session, services, principal.user_id, ref)
            existing = await session.scalar(
                select(CustomTool.id).where(CustomTool.tool_id == ref.base)
            )
            if existing is not None:
                raise _exists(ref)
            tool = CustomTool(
                owner_id=principal.user_id, tool_id=ref.base, namespace=ref.namespace,
                latest_version=1,
            )  # fmt: skip
            session.add(tool)
            await session.flush()
            stored = await _add_version(session, tool, 1, definition, digest)
            await _write_catalogue(session, ref.base, 1, definition, principal.user_id)
            await bump_revision(session, owner_scope(principal.user_id))
            await audit.record(session, Action.TOOL_REGISTERED, Actor.of(principal),
                               target=("tool", ref.base),
                               details={"version": 1, "kind": definition.kind, "digest": digest})  # fmt: skip
            return stored
    except IntegrityError:  # a concurrent registration of the same id won
        raise _exists(ref) from None


def _exists(ref: ToolRef) -> ToolExists:
    return ToolExists(
        f"you already have a tool {ref.base!r}; PUT /tools/{ref.base} adds a version",
        details={"tool": ref.base},
    )


async def _add_version(
    session: AsyncSession, tool: CustomTool, version: int, definition: ToolDefinition, digest: str
) -> StoredVersion:
    row = CustomToolVersion(
        custom_tool_id=tool.id,
        version=version,
        definition=definition.model_dump(mode="json"),
        digest=digest,
    )
    session.add(row)
    await session.flush()
    return StoredVersion(
        tool_id=tool.tool_id,
        version=version,
        latest_version=version,
        owner_id=tool.owner_id,
        definition=definition,
        digest=digest,
        version_id=row.id,
        created_at=row.created_at or datetime.now(UTC),
    )


async def checked_tool(
    session: AsyncSession,
    principal: Principal,
    tool_id: str,
    *,
    operation: str,
    lock: bool = False,
) -> CustomTool:
    """The tool if the caller may do `operation` on it (see `check_tool`)."""
    statement = select(CustomTool).where(CustomTool.tool_id == tool_id)
    if lock:
        statement = statement.with_for_update()
    tool = await session.scalar(statement)
    if tool is None:
        raise ToolNotFound(tool_id)
    check_tool(principal, operation, tool)
    return tool


async def bump_tool(session: AsyncSession, tool: CustomTool) -> None:
    """Raise the counters of everyone who sees the tool: its owner, its organisation."""
    await bump_revision(session, owner_scope(tool.owner_id))
    if tool.shared_organisation_id is not None:
        await bump_revision(session, organisation_scope(tool.shared_organisation_id))


async def add_version(
    services: Services, principal: Principal, tool_id: str, definition: ToolDefinition
) -> StoredVersion:
    """The next version of one of your tools (its whole definition, replaced)."""
    if definition.id != tool_id:
        raise ToolDefinitionInvalid(
            f"the body's id {definition.id!r} is not the tool's id {tool_id!r}",
            details={"errors": [{"path": "/id", "message": "must be the tool's id"}]},
        )
    ref = _checked(services, definition)
    digest = digest_of(definition)
    async with services.sessionmaker.begin() as session:
        tool = await checked_tool(session, principal, ref.base, operation="tools.update", lock=True)
        version = tool.latest_version + 1
        tool.latest_version = version
        tool.updated_at = datetime.now(UTC)
        stored = await _add_version(session, tool, version, definition, digest)
        await _write_catalogue(session, ref.base, version, definition, principal.user_id)
        await bump_tool(session, tool)
        await audit.record(session, Action.TOOL_UPDATED, Actor.of(principal),
                           target=("tool", ref.base),
                           details={"version": version, "kind": definition.kind, "digest": digest})  # fmt: skip
        return stored


def _stored(tool: CustomTool, row: CustomToolVersion) -> StoredVersion:
    return StoredVersion(
        tool_id=tool.tool_id,
        version=row.version,
        latest_version=tool.latest_version,
        owner_id=tool.owner_id,
        definition=ToolDefinition.model_validate(row.definition),
        digest=row.digest,
        version_id=row.id,
        created_at=row.created_at,
        shared_organisation_id=tool.shared_organisation_id,
        shared_role=shared_role_of(tool),
    )


def parse_tool_ref(raw: str) -> ToolRef:
    ref = parse_ref(raw)
    if ref is None:
        raise ToolNotFound(raw[:200])
    return ref


async def get_version(
    services: Services, principal: Principal, raw_id: str
) -> tuple[StoredVersion, list[int]]:
    """One of your tools, or one shared with your organisation (`id`: latest, `id@N`: that
    version), and all its version numbers."""
    ref = parse_tool_ref(raw_id)
    async with services.sessionmaker() as session:
        tool = await checked_tool(session, principal, ref.base, operation="tools.custom.read")
        number = ref.version or tool.latest_version
        rows = list(
            await session.scalars(
                select(CustomToolVersion)
                .where(CustomToolVersion.custom_tool_id == tool.id)
                .order_by(CustomToolVersion.version)
            )
        )
    chosen = next((row for row in rows if row.version == number), None)
    if chosen is None:
        raise ToolNotFound(raw_id)
    return _stored(tool, chosen), [row.version for row in rows]


async def delete_tool(services: Services, principal: Principal, raw_id: str) -> None:
    """Delete one of your tools with all its versions; `TOOL_IN_USE` while agents name it."""
    ref = parse_tool_ref(raw_id)
    if ref.version is not None:
        raise ToolDefinitionInvalid(
            "versions are kept for the agents that pin them: delete the tool (without @version)",
            details={"errors": [{"path": "/id", "message": "no @version"}]},
        )
    async with services.sessionmaker.begin() as session:
        tool = await checked_tool(session, principal, ref.base, operation="tools.delete", lock=True)
        ids = [ref.base, *(f"{ref.base}@{n}" for n in range(1, tool.latest_version + 1))]
        using = (
            await session.execute(
                select(AgentTool.agent_id, Agent.owner_id)
                .join(Agent, Agent.id == AgentTool.agent_id)
                .where(AgentTool.tool_id.in_(ids))
            )
        ).all()
        if using:
            # only the owner's own agents are named: other members' ids are theirs
            agents = sorted({str(a) for a, owner in using if owner == tool.owner_id})
            others = len({a for a, owner in using if owner != tool.owner_id})
            raise ToolInUse(
                f"{ref.base} is used by {len(agents)} of your agents and {others} of other "
                "members' (it was shared); remove it from them first",
                details={"tool": ref.base, "agents": agents[:50], "other_agents": others},
            )
        await session.execute(
            delete(Tool).where(
                Tool.id.in_(ids), Tool.source == "custom", Tool.owner_id == tool.owner_id
            )
        )
        await bump_tool(session, tool)
        await session.delete(tool)
        await audit.record(session, Action.TOOL_DELETED, Actor.of(principal),
                           target=("tool", ref.base))  # fmt: skip


def usable_by(
    owner_id: uuid.UUID, organisation_id: uuid.UUID | None = None, role: str | None = None
) -> ColumnElement[bool]:
    """The tools an owner's agents in an organisation may name: the owner's own, and those
    shared with that organisation whose shared role lets the owner's `role` there use them
    (`tools.use` in the policy table)."""
    own = CustomTool.owner_id == owner_id
    if organisation_id is None or role is None:
        return own
    roles = [r for r in ROLES if may(role, "tools.use", owner=False, shared_role=r)]
    if not roles:
        return own
    shared = and_(
        CustomTool.shared_organisation_id == organisation_id,
        CustomTool.shared_role.in_(roles),
        owner_may_share(organisation_id),
    )
    return or_(own, shared)


def owner_may_share(organisation_id: uuid.UUID) -> ColumnElement[bool]:
    """The tool's owner is still a member of the organisation with a role that may share
    (`tools.share`): a removed or demoted owner's tool is used by no one there, even before
    `sharing.unshare_owner_tools` made it private."""
    return (
        select(Membership.user_id)
        .where(
            Membership.user_id == CustomTool.owner_id,
            Membership.organisation_id == organisation_id,
            Membership.role.in_(sharing_roles()),
        )
        .exists()
    )


async def member_role(
    session: AsyncSession, user_id: uuid.UUID, organisation_id: uuid.UUID
) -> str | None:
    found: str | None = await session.scalar(
        select(Membership.role).where(
            Membership.user_id == user_id, Membership.organisation_id == organisation_id
        )
    )
    return found


async def latest_versions(
    session: AsyncSession, visible: ColumnElement[bool], owner_id: uuid.UUID
) -> list[StoredVersion]:
    """The latest version of each tool `visible` selects (`usable_by`), by id: at most
    `MAX_LISTED` of the owner's own and as many shared with them, each counted apart (so no
    one sharing many tools pushes an owner's own out)."""
    statement = (
        select(CustomTool, CustomToolVersion)
        .join(
            CustomToolVersion,
            and_(
                CustomToolVersion.custom_tool_id == CustomTool.id,
                CustomToolVersion.version == CustomTool.latest_version,
            ),
        )
        .where(visible)
        .order_by(CustomTool.tool_id)
        .limit(MAX_LISTED)
    )
    found: list[StoredVersion] = []
    for mine in (CustomTool.owner_id == owner_id, CustomTool.owner_id != owner_id):
        rows = await session.execute(statement.where(mine))
        found.extend(_stored(tool, version) for tool, version in rows.all())
    return sorted(found, key=lambda stored: stored.tool_id)


async def pinned_versions(
    session: AsyncSession, visible: ColumnElement[bool], refs: Iterable[ToolRef]
) -> list[StoredVersion]:
    """The named versions (`id@N`) of the tools `visible` selects that exist."""
    wanted = [ref for ref in refs if ref.version is not None]
    if not wanted:
        return []
    rows = await session.execute(
        select(CustomTool, CustomToolVersion)
        .join(CustomToolVersion, CustomToolVersion.custom_tool_id == CustomTool.id)
        .where(
            visible,
            or_(
                *(
                    and_(CustomTool.tool_id == ref.base, CustomToolVersion.version == ref.version)
                    for ref in wanted
                )
            ),
        )
    )
    return [_stored(tool, version) for tool, version in rows.all()]
