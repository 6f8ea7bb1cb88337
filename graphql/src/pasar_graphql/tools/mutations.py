"""Custom tool mutations; input is the same registration body as `POST /tools` (validated by
`pasar_core.custom_tools`)."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from pasar_core.agents.service import SharingInput
from pasar_core.custom_tools import service
from pasar_core.custom_tools.definition import ToolDefinition
from pasar_core.schemas import parse_model
from strawberry.scalars import JSON

from pasar_graphql.context import Info
from pasar_graphql.idempotency import once
from pasar_graphql.permissions import allowed
from pasar_graphql.tools.types import Tool


@strawberry.type(description="A registered custom tool version.")
class ToolSavedPayload:
    tool_id: str
    version: int
    tool: Tool

    @classmethod
    def of(cls, saved: dict[str, Any]) -> ToolSavedPayload:
        return cls(
            tool_id=saved["tool_id"], version=saved["version"], tool=Tool.from_view(saved["tool"])
        )


def _definition(input: JSON) -> ToolDefinition:
    return parse_model(ToolDefinition, input, what="tool")


async def resolve_register_tool(
    info: Info,
    input: JSON,
    idempotency_key: Annotated[
        str | None,
        strawberry.argument(description="The same key and input answer the first result again."),
    ] = None,
) -> ToolSavedPayload:
    context = info.context
    principal = await context.principal()
    definition = _definition(input)

    async def register() -> dict[str, Any]:
        return await service.register_tool(context.services, principal, definition)

    async def load(stored: Any) -> dict[str, Any]:
        return dict(stored)

    saved = await once(info, "registerTool", idempotency_key, input, register, dict, load)
    return ToolSavedPayload.of(saved)


async def resolve_update_tool(info: Info, id: str, input: JSON) -> ToolSavedPayload:
    context = info.context
    principal = await context.principal()
    saved = await service.update_tool(context.services, principal, id, _definition(input))
    return ToolSavedPayload.of(saved)


async def resolve_delete_tool(info: Info, id: str) -> bool:
    context = info.context
    await service.delete_tool(context.services, await context.principal(), id)
    return True


async def resolve_share_tool(info: Info, id: str, role: str | None) -> Tool:
    context = info.context
    sharing = parse_model(SharingInput, {"role": role}, what="sharing")
    view = await service.share_tool(context.services, await context.principal(), id, sharing)
    return Tool.from_view(view)


async def resolve_unshare_tool(info: Info, id: str) -> bool:
    context = info.context
    await service.unshare_tool(context.services, await context.principal(), id)
    return True


@strawberry.type
class ToolMutations:
    register_tool = strawberry.mutation(
        resolver=resolve_register_tool,
        permission_classes=allowed("tools.register"),
        description="Register a custom tool (the body of POST /tools); version 1.",
    )
    update_tool = strawberry.mutation(
        resolver=resolve_update_tool,
        permission_classes=allowed("tools.update"),
        description="A new version of your custom tool.",
    )
    delete_tool = strawberry.mutation(
        resolver=resolve_delete_tool,
        permission_classes=allowed("tools.delete"),
        description="Delete your custom tool and its versions; true when done.",
    )
    share_tool = strawberry.mutation(
        resolver=resolve_share_tool,
        permission_classes=allowed("tools.share"),
        description="Share your custom tool with the organisation you act in, members acting "
        "on it with at most `role` (viewer: they see it; member or admin: their agents may use "
        "it); null makes it private.",
    )
    unshare_tool = strawberry.mutation(
        resolver=resolve_unshare_tool,
        permission_classes=allowed("tools.unshare"),
        description="Make a custom tool shared with your organisation private (its owner, or "
        "an admin of the organisation); true when done.",
    )
