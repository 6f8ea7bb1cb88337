"""The registry an owner's agents see: the installed one, sandboxed plugins' proxies, the
owner's own custom tools, and (for agents of an organisation) the custom tools other members
shared with it that the owner's role there lets them use, while those members still may share
there (`Registry.with_tools`; a removal or demotion unshares and raises the organisation's
counter, so cached registries drop them).

Built registries are cached per process and per owner and organisation, keyed by the counters
in `tool_revisions` (the owner's, the sandboxed plugins' and the organisation's) and the owner's
role there; every change in any process raises one of the counters in the same transaction, so
each `registry_for` reads them (one indexed query; the role, a second, only when the
organisation has shared tools) and rebuilds only when one moved. An owner with no custom tools and no sandboxed plugins installed
gets the installed registry itself. Each custom tool carries a fingerprint (its version row and
content digest), so anything cached by tool ids (compiled agent graphs) can never mix versions.

Which ids an owner sees: `namespace:name` (the latest version) for each of their tools, plus any
pinned `namespace:name@N` that is asked for (`tool_ids`) and exists.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pasar_core.custom_tools.definition import (
    HttpImplementation,
    PythonImplementation,
    ToolDefinition,
)
from pasar_core.custom_tools.http_tools import http_run
from pasar_core.custom_tools.ids import parse_ref
from pasar_core.custom_tools.python_tools import RUN_SLACK_S, python_run
from pasar_core.custom_tools.schemas import validator_for
from pasar_core.custom_tools.store import (
    SANDBOXED_SCOPE,
    StoredVersion,
    latest_versions,
    member_role,
    organisation_scope,
    owner_scope,
    pinned_versions,
    revisions,
    usable_by,
)
from pasar_core.errors import ValidationFailed
from pasar_core.mcp.pool import GuardedMcp, mcp_tool_run
from pasar_core.registry import RegisteredTool, Registry
from pasar_core.sandbox.limits import NetworkPolicy, SandboxLimits
from pasar_core.sandbox.queue import SandboxQueue
from pasar_core.sandbox.settings import SandboxSettings
from pasar_core.sandbox.workloads import PythonTool
from pasar_core.specs import Effect, ToolFamily, ToolSpec

log = logging.getLogger("pasar.custom_tools")

MAX_OWNERS_CACHED = 1024
HTTP_SLACK_S = 5.0

SharedLoader = Callable[[AsyncSession], Awaitable[tuple[list[RegisteredTool], list[ToolFamily]]]]
"""Loads the tools every owner sees besides the installed ones (sandboxed plugins' proxies)."""


def _limits(definition: ToolDefinition, settings: SandboxSettings) -> SandboxLimits:
    """The stored limits, lowered to the operator's current maxima if those shrank since."""
    try:
        return SandboxLimits.from_tool(
            definition.limits, timeout_s=definition.timeout_s, maxima=settings.maxima
        )
    except ValidationFailed:
        known = {limit.name for limit in fields(SandboxLimits)}
        given: dict[str, Any] = {
            key: value
            for key, value in definition.limits.items()
            if key in known and isinstance(value, int | float) and not isinstance(value, bool)
        }
        given["timeout_s"] = definition.timeout_s
        return replace(SandboxLimits(), **given).within(settings.maxima)


def registered(
    stored: StoredVersion,
    tool_id: str,
    queue: SandboxQueue | None,
    settings: SandboxSettings,
    mcp: GuardedMcp | None = None,
) -> RegisteredTool:
    """A custom tool version as the registry holds it, under `tool_id` (`id` or `id@N`)."""
    definition = stored.definition
    implementation = definition.implementation
    namespace = stored.tool_id.split(":", 1)[0]
    secrets: tuple[str, ...] = ()
    if isinstance(implementation, PythonImplementation):
        limits = _limits(definition, settings)
        workload = PythonTool(
            tool_id=stored.tool_id,
            version=stored.version,
            source=implementation.source,
            entrypoint=implementation.entrypoint,
            limits=limits,
            network=NetworkPolicy(allow_hosts=tuple(definition.network.allow_hosts)),
        )
        run = python_run(queue, workload)
        timeout_s = limits.timeout_s + RUN_SLACK_S
    elif isinstance(implementation, HttpImplementation):
        secrets = implementation.secret_names()
        run = http_run(
            stored.tool_id, implementation, list(definition.network.allow_hosts),
            definition.timeout_s,
        )  # fmt: skip
        timeout_s = definition.timeout_s + HTTP_SLACK_S
    else:
        secrets = implementation.secret_names()
        run = mcp_tool_run(
            stored.tool_id, implementation, list(definition.network.allow_hosts),
            definition.timeout_s, Effect(definition.effect), mcp,
        )  # fmt: skip
        timeout_s = definition.timeout_s + HTTP_SLACK_S
    spec = ToolSpec(
        id=tool_id,
        title=definition.title,
        description=definition.description,
        input_schema=definition.input_schema,
        output_schema=definition.output_schema,
        run=run,
        effect=Effect(definition.effect),
        timeout_s=timeout_s,
    )
    family = ToolFamily(
        id=namespace,
        title=namespace,
        description=f"custom tools in the namespace {namespace}",
        tools=(spec,),
        secrets=secrets,
    )
    return RegisteredTool(
        spec=spec,
        family=family,
        plugin="custom",
        input_validator=validator_for(definition.input_schema),
        output_validator=validator_for(definition.output_schema),
        fingerprint=f"{stored.version_id}:{stored.digest}",
        source="custom",
        version=stored.version,
    )


def namespace_families(tools: Iterable[RegisteredTool]) -> list[ToolFamily]:
    """One family per namespace (what `check_tool_settings` and the catalogue read)."""
    grouped: dict[str, list[RegisteredTool]] = {}
    for tool in tools:
        grouped.setdefault(tool.family.id, []).append(tool)
    return [
        ToolFamily(
            id=namespace,
            title=namespace,
            description=f"custom tools in the namespace {namespace}",
            tools=tuple(tool.spec for tool in members),
            secrets=tuple(sorted({s for tool in members for s in tool.family.secrets})),
        )
        for namespace, members in grouped.items()
    ]


@dataclass(slots=True)
class _OwnerEntry:
    revisions: tuple[int, int, int, str | None]
    tools: dict[str, RegisteredTool] = field(default_factory=dict)
    registry: Registry | None = None


@dataclass(slots=True)
class _Shared:
    revision: int
    registry: Registry


class ToolOverlays:
    """Per process: the registries owners' agents see (see the module docstring)."""

    def __init__(
        self,
        base: Registry,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: SandboxSettings,
        queue: SandboxQueue | None = None,
        shared_loader: SharedLoader | None = None,
        mcp: GuardedMcp | None = None,
    ) -> None:
        self.base = base
        self.queue = queue
        self.mcp = mcp
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._shared_loader = shared_loader
        self._shared = _Shared(0, base)
        self._owners: OrderedDict[tuple[uuid.UUID, uuid.UUID | None], _OwnerEntry] = OrderedDict()

    async def registry_for(
        self,
        owner_id: uuid.UUID,
        tool_ids: Collection[str] | None = None,
        organisation_id: uuid.UUID | None = None,
    ) -> Registry:
        """`organisation_id`: the agent's organisation (its members' shared tools join)."""
        scopes = [owner_scope(owner_id), SANDBOXED_SCOPE]
        if organisation_id is not None:
            scopes.append(organisation_scope(organisation_id))
        async with self._sessionmaker() as session:
            user_revision, shared_revision, *rest = await revisions(session, scopes)
            organisation_revision = rest[0] if rest else 0
            role = None
            if organisation_id is not None and organisation_revision:
                role = await member_role(session, owner_id, organisation_id)
            shared = await self._shared_registry(session, shared_revision)
            if user_revision == 0 and role is None:
                return shared
            visible = usable_by(owner_id, organisation_id, role)
            cache_key = (owner_id, organisation_id if role is not None else None)
            entry = self._owners.get(cache_key)
            key = (user_revision, shared_revision, organisation_revision, role)
            if entry is None or entry.revisions != key:
                entry = _OwnerEntry(key)
                for stored in await latest_versions(session, visible, owner_id):
                    entry.tools[stored.tool_id] = self._registered(stored, stored.tool_id)
            wanted = [
                ref
                for ref in (parse_ref(tool_id) for tool_id in tool_ids or ())
                if ref is not None and ref.version is not None and str(ref) not in entry.tools
            ]
            if wanted:
                for stored in await pinned_versions(session, visible, wanted):
                    entry.tools[stored.ref] = self._registered(stored, stored.ref)
                entry.registry = None
        if entry.registry is None:
            entry.registry = self._overlay(shared, entry.tools.values())
        self._owners[cache_key] = entry
        self._owners.move_to_end(cache_key)
        while len(self._owners) > MAX_OWNERS_CACHED:
            self._owners.popitem(last=False)
        return entry.registry

    async def public_registry(self) -> Registry:
        """What anyone sees: installed tools and sandboxed plugins' proxies."""
        async with self._sessionmaker() as session:
            (shared_revision,) = await revisions(session, [SANDBOXED_SCOPE])
            return await self._shared_registry(session, shared_revision)

    def _registered(self, stored: StoredVersion, tool_id: str) -> RegisteredTool:
        return registered(stored, tool_id, self.queue, self._settings, self.mcp)

    def _overlay(self, shared: Registry, tools: Iterable[RegisteredTool]) -> Registry:
        kept = []
        for tool in tools:
            if tool.spec.id in shared.tools or tool.family.id in shared.families:
                # An installed plugin took the id after the tool was registered: it wins, and
                # the start-up check refuses exact id clashes before anyone can call them.
                log.warning("custom tool %s is hidden by an installed tool family", tool.spec.id)
                continue
            kept.append(tool)
        return shared.with_tools(kept, namespace_families(kept))

    async def _shared_registry(self, session: AsyncSession, revision: int) -> Registry:
        if self._shared_loader is None or revision == 0:
            return self.base
        if self._shared.revision != revision:
            tools, families = await self._shared_loader(session)
            self._shared = _Shared(revision, self.base.with_tools(tools, families))
        return self._shared.registry


def tool_views(registry: Registry, sources: Collection[str]) -> list[dict[str, Any]]:
    """Catalogue views of the tools of `sources`, by id."""
    from pasar_core.catalog import tool_view

    return [tool_view(t) for _id, t in sorted(registry.tools.items()) if t.source in sources]
