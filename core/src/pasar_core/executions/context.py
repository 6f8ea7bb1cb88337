"""What one run needs, prepared once per run instead of once per tool call: the agent's config
and tools, the registry its owner's agents see (`registry_for`), the compiled OAuth scopes,
the agent's secrets per family and the tool context of each family."""

from __future__ import annotations

import dataclasses
import json
import uuid
from functools import cached_property
from typing import Any

from sqlalchemy import select

from pasar_core.agents.config import AgentConfig
from pasar_core.agents.secrets import load_secrets
from pasar_core.audit.record import Action, Actor, audit_row
from pasar_core.errors import ConnectionNotAttached, PasarError
from pasar_core.executions.status import ExecutionStatus
from pasar_core.executions.store import RunRecord
from pasar_core.net.guard import ALLOW_BOUND_EXTRA, ALLOW_SOCKETS_EXTRA
from pasar_core.oauth import scopes as compiler
from pasar_core.oauth.enforcement import credentials_for_tool
from pasar_core.registry import Registry
from pasar_core.services import Services
from pasar_core.specs import Effect, ToolContext
from pasar_core.storage.models import Execution
from pasar_core.tool_access import registry_for

THREAD_HISTORY_TURNS = 20


class RunContext:
    """One run's agent, tools and credentials. Tool contexts are built once per family; only
    OAuth credentials are fetched per call (a long run may need its token refreshed)."""

    def __init__(
        self, services: Services, record: RunRecord, registry: Registry, config: AgentConfig
    ) -> None:
        self.services = services
        self.record = record
        self.registry = registry
        self.config = config
        self.tool_ids = list(record.agent_tool_ids)
        self.names = {registry.tool(t).spec.langchain_name: t for t in self.tool_ids}
        self._families: dict[str, ToolContext] = {}
        self._secret_errors: dict[str, PasarError] = {}

    @classmethod
    async def prepare(cls, services: Services, record: RunRecord) -> RunContext:
        config = AgentConfig.model_validate(record.agent_config)
        # The owner's tools: a shared agent's custom tools are its owner's.
        owner = record.agent_owner_id or record.user_id
        registry = await registry_for(
            services, owner, record.agent_tool_ids, record.organisation_id
        )
        return cls(services, record, registry, config)

    @property
    def execution_id(self) -> uuid.UUID:
        return self.record.id

    def effect(self, tool_id: str) -> Effect:
        return self.registry.tool(tool_id).spec.effect

    @cached_property
    def plans(self) -> dict[str, compiler.ProviderScopes]:
        """The least scopes the agent's tools need, per provider (compiled once per run)."""
        return compiler.compile_scopes(self.registry, self.tool_ids)

    @cached_property
    def graph_key(self) -> tuple[Any, ...]:
        """What the compiled graph depends on: the config and the exact tool versions (a
        custom tool's new version never reuses the old graph)."""
        versions = self.registry.fingerprint(self.tool_ids)
        return (self.config.model_dump(mode="json"), self.tool_ids, versions)

    def tool_call_audit(self, tool_id: str, call_id: str | None) -> dict[str, Any]:
        """The audit row of one tool call: who ran which tool of which agent, and the provider
        scopes the agent's grant is used with for it (the tool's own, not the whole grant)."""
        spec = self.registry.tool(tool_id).spec
        provider = spec.auth_provider
        return audit_row(
            Action.TOOL_CALL,
            Actor(self.record.user_id, "execution", organisation_id=self.record.organisation_id),
            target=("execution", self.record.id), provider=provider,
            scopes=spec.scopes if provider else None,
            details={"agent_id": str(self.record.agent_id), "tool": tool_id,
                     "tool_call_id": call_id, "effect": spec.effect.value},
        )  # fmt: skip

    async def tool_context(self, tool_id: str) -> ToolContext:
        """The context of one call. Raises what the model should read as the tool's result:
        NOT_PERMITTED, AUTH_REQUIRED, SECRET_UNREADABLE."""
        tool = self.registry.tool(tool_id)
        provider = tool.spec.auth_provider
        grant_user = self.record.grant_user(provider) if provider else self.record.user_id
        if grant_user is None:
            raise ConnectionNotAttached(provider or "")
        oauth = await credentials_for_tool(
            self.services, self.registry, user_id=grant_user,
            agent_tool_ids=self.tool_ids, tool_id=tool_id, agent_id=self.record.agent_id,
            plans=self.plans,
        )  # fmt: skip
        family = tool.family.id
        if family in self._secret_errors:
            raise self._secret_errors[family]
        base = self._families.get(family)
        if base is None:
            try:
                base = await self._family_context(tool_id)
            except PasarError as error:
                self._secret_errors[family] = error
                raise
            self._families[family] = base
        return dataclasses.replace(base, oauth=oauth) if oauth is not None else base

    async def _family_context(self, tool_id: str) -> ToolContext:
        tool = self.registry.tool(tool_id)
        services, record = self.services, self.record
        secrets: dict[str, str] = {}
        if tool.family.secrets:
            async with services.sessionmaker() as session:
                secrets = await load_secrets(
                    session, services.keyring, record.agent_id, tool.family.secrets
                )
        return ToolContext(
            user_id=str(record.user_id),
            storage_root=services.settings.files_root / str(record.user_id),
            agent_id=str(record.agent_id),
            execution_id=str(record.id),
            settings=self.config.tool_settings.get(tool.family.id, {}),
            secrets=secrets,
            objects=services.object_store,
            extras={
                **services.extras,
                ALLOW_BOUND_EXTRA: services.settings.allow_private_hosts,
                ALLOW_SOCKETS_EXTRA: services.settings.allow_unix_sockets,
            },
        )

    async def thread_history(self) -> list[dict[str, str]]:
        """Earlier succeeded turns of the run's thread, oldest first: the runner's own (a
        thread id is the caller's choice; another member of a shared agent never reads it)."""
        record = self.record
        if not record.thread_id:
            return []
        async with self.services.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Execution.input, Execution.output)
                    .where(
                        Execution.agent_id == record.agent_id,
                        Execution.user_id == record.user_id,
                        Execution.thread_id == record.thread_id,
                        Execution.status == ExecutionStatus.SUCCEEDED.value,
                        Execution.created_at < record.created_at,
                    )
                    .order_by(Execution.created_at.desc())
                    .limit(THREAD_HISTORY_TURNS)
                )
            ).all()
        history: list[dict[str, str]] = []
        for turn_input, turn_output in reversed(rows):
            history.append({"role": "user", "content": user_message(turn_input)})
            history.append({"role": "assistant",
                            "content": str((turn_output or {}).get("message", ""))})  # fmt: skip
        return history


def user_message(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
