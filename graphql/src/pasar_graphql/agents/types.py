"""GraphQL types and inputs for agents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from pasar_core.agents.service import AgentSaved, AgentView
from strawberry.scalars import JSON

from pasar_graphql.context import Info
from pasar_graphql.tools.types import Tool


def resolve_tool_details(root: Agent, info: Info) -> list[Tool]:
    context = info.context
    installed = context.catalogue.by_id(context.services.registry)
    return [installed[tool_id] for tool_id in root.tools if tool_id in installed]


@strawberry.type(description="A reasoning strategy an agent may use (`config.strategy`).")
class Strategy:
    id: str
    title: str
    description: str


@strawberry.type(description="An agent you own, or one shared with your organisation.")
class Agent:
    id: strawberry.ID
    name: str
    tools: list[str] = strawberry.field(description="Ids of the tools the agent may call.")
    config: JSON = strawberry.field(description="How the agent runs (model, limits, memory...).")
    created_at: datetime
    updated_at: datetime
    owner_id: strawberry.ID | None = None
    organisation_id: strawberry.ID | None = None
    shared_role: str | None = strawberry.field(
        default=None,
        description="Null: private to its owner; else shared with its organisation, members "
        "acting on it with at most this role.",
    )
    version: int = strawberry.field(default=1, description="Its newest config version.")

    tool_details = strawberry.field(
        resolver=resolve_tool_details,
        description="The agent's tools that are still installed, in order.",
    )

    @classmethod
    def of(cls, view: AgentView) -> Agent:
        return cls(
            id=strawberry.ID(str(view.id)),
            name=view.name,
            tools=list(view.tools),
            config=JSON(view.config),
            created_at=view.created_at,
            updated_at=view.updated_at,
            owner_id=strawberry.ID(str(view.owner_id)) if view.owner_id else None,
            organisation_id=(
                strawberry.ID(str(view.organisation_id)) if view.organisation_id else None
            ),
            shared_role=view.shared_role,
            version=view.version,
        )


@strawberry.type(name="AgentSaved", description="A created or updated agent, and missing consent.")
class AgentSavedPayload:
    agent: Agent
    auth_required: bool = strawberry.field(
        description="Whether the agent's tools need OAuth scopes you have not granted yet."
    )
    auth_url: str | None = strawberry.field(description="Where to grant them, when known.")
    missing_scopes: JSON = strawberry.field(description="Missing scopes by provider.")

    @classmethod
    def of(cls, saved: AgentSaved) -> AgentSavedPayload:
        return cls(
            agent=Agent.of(saved.agent),
            auth_required=saved.auth.required,
            auth_url=saved.auth.auth_url,
            missing_scopes=JSON(
                {provider: sorted(scopes) for provider, scopes in saved.auth.missing.items()}
            ),
        )


@strawberry.input(
    description="A new agent. `config` is validated by the server (unknown keys fail)."
)
class CreateAgentInput:
    name: str
    tools: list[str] = strawberry.field(default_factory=list)
    config: JSON | None = strawberry.field(
        default=None, description="AgentConfig as JSON; null or absent for the defaults."
    )

    def as_data(self) -> dict[str, Any]:
        """Plain data for `pasar_core`'s `AgentInput`."""
        data: dict[str, Any] = {"name": self.name, "tools": list(self.tools)}
        if self.config is not None:
            data["config"] = self.config
        return data


@strawberry.input(description="Changes to an agent; absent fields stay. `config` replaces it all.")
class UpdateAgentInput:
    name: str | None = strawberry.UNSET
    tools: list[str] | None = strawberry.UNSET
    config: JSON | None = strawberry.UNSET

    def as_data(self) -> dict[str, Any]:
        """Plain data for `pasar_core`'s `AgentPatch` (only the fields that were sent)."""
        sent = {"name": self.name, "tools": self.tools, "config": self.config}
        return {key: value for key, value in sent.items() if value is not strawberry.UNSET}
