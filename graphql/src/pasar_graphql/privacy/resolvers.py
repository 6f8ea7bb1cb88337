"""`exportMyData`, `deleteMyAccount`, `retentionPolicy` and `setRetentionPolicy`
(pasar_core.privacy): the same services as REST's /me/export, DELETE /me and /retention."""

from __future__ import annotations

import strawberry
from pasar_core.audit.record import Actor
from pasar_core.privacy.erasure import ErasureRequest, delete_my_account
from pasar_core.privacy.export import export_user_data
from pasar_core.privacy.retention import RetentionInput, retention_of, set_retention
from pasar_core.schemas import parse_model
from strawberry.scalars import JSON

from pasar_graphql.context import Info
from pasar_graphql.permissions import allowed


@strawberry.type(description="How long the organisation keeps its runs, knowledge and files.")
class RetentionPolicy:
    execution_days: int | None = strawberry.field(
        description="Days finished runs and their events are kept after they finished; null "
        "keeps them."
    )
    knowledge_days: int | None = strawberry.field(
        description="Days its agents' knowledge (embeddings) is kept; null keeps it."
    )
    file_days: int | None = strawberry.field(
        description="Days stored files are kept (a personal organisation's: its user's files); "
        "null keeps them."
    )

    @classmethod
    def of(cls, data: RetentionInput) -> RetentionPolicy:
        return cls(execution_days=data.execution_days, knowledge_days=data.knowledge_days,
                   file_days=data.file_days)  # fmt: skip


async def resolve_export_my_data(info: Info) -> JSON:
    principal = await info.context.principal()
    return JSON(await export_user_data(info.context.services, principal))


async def resolve_retention_policy(info: Info) -> RetentionPolicy:
    principal = await info.context.principal()
    return RetentionPolicy.of(await retention_of(info.context.services, principal.organisation_id))


async def resolve_delete_my_account(info: Info, password: str) -> bool:
    context = info.context
    principal = await context.principal()
    data = parse_model(ErasureRequest, {"password": password}, what="erasure")
    await delete_my_account(context.services, context.runs, principal, data)
    return True


async def resolve_set_retention_policy(
    info: Info,
    execution_days: int | None = strawberry.UNSET,
    knowledge_days: int | None = strawberry.UNSET,
    file_days: int | None = strawberry.UNSET,
) -> RetentionPolicy:
    """Only the arguments given change (null: keep everything of that kind)."""
    context = info.context
    principal = await context.principal()
    given = {"execution_days": execution_days, "knowledge_days": knowledge_days,
             "file_days": file_days}  # fmt: skip
    data = parse_model(
        RetentionInput,
        {name: value for name, value in given.items() if value is not strawberry.UNSET},
        what="retention",
    )
    saved = await set_retention(
        context.services, principal.organisation_id, data, Actor.of(principal)
    )
    return RetentionPolicy.of(saved)


@strawberry.type
class PrivacyQueries:
    export_my_data: JSON = strawberry.field(
        resolver=resolve_export_my_data,
        permission_classes=allowed("privacy.export"),
        description="Everything pasar holds about you, as one JSON document (secrets by name, "
        "API keys and connections as metadata; never a hash, token or secret value).",
    )
    retention_policy: RetentionPolicy = strawberry.field(
        resolver=resolve_retention_policy,
        permission_classes=allowed("retention.read"),
        description="The retention policy of the organisation you act in.",
    )


@strawberry.type
class PrivacyMutations:
    delete_my_account: bool = strawberry.field(
        resolver=resolve_delete_my_account,
        permission_classes=allowed("privacy.erase"),
        description="Erase your account and everything of yours (your password confirms it); "
        "refused (LAST_ADMIN) while you are the last admin of an organisation with others.",
    )
    set_retention_policy: RetentionPolicy = strawberry.field(
        resolver=resolve_set_retention_policy,
        permission_classes=allowed("retention.set"),
        description="Admins: days the organisation keeps finished runs, its agents' knowledge "
        "and (a personal organisation's) files; only the arguments given change (null: keep).",
    )
