"""GraphQL types for scope plans and provider connections."""

from __future__ import annotations

from datetime import datetime

import strawberry
from pasar_core.oauth.connections import ConnectionView
from pasar_core.oauth.plan import ProviderPlan
from pasar_core.specs import ScopeRisk

strawberry.enum(ScopeRisk, name="ScopeRisk", description="Google's risk class of a scope.")


@strawberry.type(description="One scope of a plan: its risk class and the actions needing it.")
class PlannedScope:
    scope: str
    risk: ScopeRisk | None = strawberry.field(description="Null when the provider is unknown.")
    description: str
    tools: list[str] = strawberry.field(description="The chosen actions this scope is for.")


@strawberry.type(description="Scopes added, removed and kept, compared with the agent's tools.")
class ScopeDiff:
    added: list[str]
    removed: list[str]
    kept: list[str]


@strawberry.type(description="The least scopes one provider must grant for the chosen actions.")
class ProviderScopePlan:
    provider: str
    scopes: list[PlannedScope]
    highest_risk: ScopeRisk | None
    diff: ScopeDiff | None = strawberry.field(description="Only when `agentId` was given.")
    not_granted: list[str] | None = strawberry.field(
        description="Planned scopes your grant does not cover yet (null when anonymous)."
    )

    @classmethod
    def of(cls, plan: ProviderPlan) -> ProviderScopePlan:
        compiled = plan.compiled
        return cls(
            provider=compiled.provider,
            scopes=[
                PlannedScope(scope=s.scope, risk=s.risk, description=s.description,
                             tools=list(s.tools))
                for s in compiled.scopes
            ],
            highest_risk=compiled.highest_risk,
            diff=None
            if plan.diff is None
            else ScopeDiff(added=sorted(plan.diff.added), removed=sorted(plan.diff.removed),
                           kept=sorted(plan.diff.kept)),
            not_granted=None if plan.not_granted is None else sorted(plan.not_granted),
        )  # fmt: skip


@strawberry.type(description="Your grant at one OAuth provider (tokens are never shown).")
class Connection:
    provider: str
    title: str
    scopes: list[str]
    health: str = strawberry.field(description="ok, expired (refreshable) or needs_reauth.")
    account: str | None = strawberry.field(
        description="The provider account's email, as the provider named it at consent."
    )
    has_refresh_token: bool
    expires_at: datetime | None
    refreshed_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: ConnectionView) -> Connection:
        return cls(
            provider=view.provider, title=view.title, scopes=list(view.scopes),
            health=view.health, account=view.account, has_refresh_token=view.has_refresh_token,
            expires_at=view.expires_at, refreshed_at=view.refreshed_at,
            last_error=view.last_error, created_at=view.created_at, updated_at=view.updated_at,
        )  # fmt: skip


@strawberry.type(description="A provider disconnected: tokens deleted, grant revoked if it could.")
class Disconnected:
    provider: str
    revoked: bool = strawberry.field(description="Whether the provider confirmed the revocation.")
