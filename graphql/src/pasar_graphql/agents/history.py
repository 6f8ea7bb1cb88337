"""An agent's config versions (list, one, a diff of two, rollback) and the caller's threads
on it (list, read, delete): the same services as REST, the same policy operations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from pasar_core.agents import versions
from pasar_core.agents.config_diff import Change
from pasar_core.agents.versions import VersionView
from pasar_core.executions import threads
from pasar_core.executions.threads import ThreadView, TurnView
from strawberry.scalars import JSON

from pasar_graphql.agents.types import AgentSavedPayload
from pasar_graphql.context import Info
from pasar_graphql.permissions import allowed


@strawberry.type(description="One config version of an agent: its name, tools and config then.")
class AgentVersion:
    agent_id: strawberry.ID
    version: int
    name: str
    tools: list[str]
    config: JSON
    author_id: strawberry.ID | None
    created_at: datetime
    rolled_back_from: int | None = strawberry.field(
        description="The version this one copies, when a rollback made it."
    )

    @classmethod
    def of(cls, view: VersionView) -> AgentVersion:
        return cls(
            agent_id=strawberry.ID(str(view.agent_id)), version=view.version, name=view.name,
            tools=list(view.tools), config=JSON(view.config),
            author_id=strawberry.ID(str(view.author_id)) if view.author_id else None,
            created_at=view.created_at, rolled_back_from=view.rolled_back_from,
        )  # fmt: skip


@strawberry.type(description="One difference between two versions.")
class ConfigChange:
    path: str = strawberry.field(description="Dotted: name, tools, config.limits.max_steps.")
    kind: str = strawberry.field(description="added, removed or changed.")
    old: JSON | None
    new: JSON | None

    @classmethod
    def of(cls, change: Change) -> ConfigChange:
        return cls(path=change.path, kind=change.kind, old=JSON(change.old),
                   new=JSON(change.new))  # fmt: skip


@strawberry.type(description="What changed from one version to another.")
class AgentVersionDiff:
    from_version: int
    to_version: int
    changes: list[ConfigChange]


@strawberry.type(description="One of your threads on an agent.")
class Thread:
    thread_id: str
    turns: int
    first_at: datetime
    last_at: datetime

    @classmethod
    def of(cls, view: ThreadView) -> Thread:
        return cls(thread_id=view.thread_id, turns=view.turns, first_at=view.first_at,
                   last_at=view.last_at)  # fmt: skip


@strawberry.type(description="One turn of a thread: a run's input and output.")
class ThreadTurn:
    execution_id: strawberry.ID
    status: str
    input: JSON
    output: JSON | None
    created_at: datetime

    @classmethod
    def of(cls, view: TurnView) -> ThreadTurn:
        return cls(
            execution_id=strawberry.ID(str(view.execution_id)), status=view.status,
            input=JSON(view.input), output=JSON(view.output) if view.output is not None else None,
            created_at=view.created_at,
        )  # fmt: skip


Page = Annotated[int, strawberry.argument(description="At most this many (the server caps it).")]


async def resolve_agent_versions(
    info: Info, agent_id: strawberry.ID, first: Page = 50, offset: int = 0
) -> list[AgentVersion]:
    context = info.context
    found = await versions.list_versions(
        context.services, await context.principal(), agent_id, limit=first, offset=offset
    )
    return [AgentVersion.of(view) for view in found]


async def resolve_agent_version(info: Info, agent_id: strawberry.ID, version: int) -> AgentVersion:
    context = info.context
    view = await versions.get_version(context.services, await context.principal(), agent_id,
                                      version)  # fmt: skip
    return AgentVersion.of(view)


async def resolve_agent_version_diff(
    info: Info, agent_id: strawberry.ID, from_version: int, to_version: int
) -> AgentVersionDiff:
    context = info.context
    found = await versions.diff_versions(
        context.services, await context.principal(), agent_id, from_version, to_version
    )
    return AgentVersionDiff(from_version=found.from_version, to_version=found.to_version,
                            changes=[ConfigChange.of(c) for c in found.changes])  # fmt: skip


async def resolve_rollback_agent(
    info: Info, agent_id: strawberry.ID, version: int
) -> AgentSavedPayload:
    context = info.context
    saved = await versions.rollback(context.services, await context.principal(), agent_id,
                                    version)  # fmt: skip
    return AgentSavedPayload.of(saved)


async def resolve_threads(
    info: Info, agent_id: strawberry.ID, first: Page = 50, offset: int = 0
) -> list[Thread]:
    context = info.context
    found = await threads.list_threads(
        context.services, await context.principal(), agent_id, limit=first, offset=offset
    )
    return [Thread.of(view) for view in found]


async def resolve_thread(
    info: Info, agent_id: strawberry.ID, thread_id: str, first: Page = 50, offset: int = 0
) -> list[ThreadTurn]:
    context = info.context
    turns = await threads.read_thread(
        context.services, await context.principal(), agent_id, thread_id,
        limit=first, offset=offset,
    )  # fmt: skip
    return [ThreadTurn.of(turn) for turn in turns]


async def resolve_delete_thread(info: Info, agent_id: strawberry.ID, thread_id: str) -> int:
    context = info.context
    return await threads.delete_thread(context.services, await context.principal(), agent_id,
                                       thread_id)  # fmt: skip


@strawberry.type
class HistoryQueries:
    agent_versions = strawberry.field(
        resolver=resolve_agent_versions,
        permission_classes=allowed("agents.versions.list"),
        description="An agent's config versions, newest first.",
    )
    agent_version = strawberry.field(
        resolver=resolve_agent_version,
        permission_classes=allowed("agents.versions.read"),
        description="One config version; NOT_FOUND for an unknown one or a foreign agent.",
    )
    agent_version_diff = strawberry.field(
        resolver=resolve_agent_version_diff,
        permission_classes=allowed("agents.versions.read"),
        description="The paths added, removed and changed from one version to another.",
    )
    threads = strawberry.field(
        resolver=resolve_threads,
        permission_classes=allowed("agents.threads.list"),
        description="Your threads on an agent, most recently used first.",
    )
    thread = strawberry.field(
        resolver=resolve_thread,
        permission_classes=allowed("agents.threads.read"),
        description="The turns of one of your threads, oldest first; NOT_FOUND for another's.",
    )


@strawberry.type
class HistoryMutations:
    rollback_agent = strawberry.mutation(
        resolver=resolve_rollback_agent,
        permission_classes=allowed("agents.versions.rollback"),
        description="Make the agent what `version` was, as a new version.",
    )
    delete_thread = strawberry.mutation(
        resolver=resolve_delete_thread,
        permission_classes=allowed("agents.threads.delete"),
        description="Delete one of your threads (its runs and memory); the turns deleted.",
    )
