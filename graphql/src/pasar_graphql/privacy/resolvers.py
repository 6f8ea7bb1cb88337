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


@strawberry.type(description="How long the organisation keeps its finished runs.")
class RetentionPolicy:
    execution_days: int | None = strawberry.field(
        description="Days finished runs and their events are kept; null keeps them."
    )

    @classmethod
    def of(cls, data: RetentionInput) -> RetentionPolicy:
        return cls(execution_days=data.execution_days)


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


async def resolve_set_retention_policy(info: Info, execution_days: int | None) -> RetentionPolicy:
    context = info.context
    principal = await context.principal()
    data = parse_model(RetentionInput, {"execution_days": execution_days}, what="retention")
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
        description="Admins: days the organisation keeps finished runs (null: keep them).",
    )
