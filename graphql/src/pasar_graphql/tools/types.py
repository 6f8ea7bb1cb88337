"""GraphQL types for registered tools."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry
from pasar_core.catalog import tool_view
from pasar_core.registry import RegisteredTool
from pasar_core.specs import Effect
from strawberry.scalars import JSON

# The core's enum, exposed as-is (READ, WRITE, SEND, DESTRUCTIVE): one list of effects, no copy.
strawberry.enum(Effect, name="ToolEffect", description="How much a tool can change the world.")


@strawberry.type(
    description="A tool an agent may call: from an installed plugin, a sandboxed plugin, or "
    "one of your custom tools."
)
class Tool:
    id: str = strawberry.field(description="`service:action`, e.g. `txt:read`.")
    family: str
    title: str
    description: str
    input_schema: JSON = strawberry.field(description="JSON Schema (2020-12) of the arguments.")
    output_schema: JSON = strawberry.field(description="JSON Schema (2020-12) of the result.")
    auth_provider: str | None = strawberry.field(description="OAuth provider, when one is needed.")
    scopes: list[str] = strawberry.field(description="OAuth scopes the tool needs.")
    effect: Effect
    timeout_s: float = strawberry.field(description="Seconds a call may take.")
    source: str = strawberry.field(description="`installed`, `sandboxed` or `custom`.")
    version: int | None = strawberry.field(description="A custom tool's version.")
    kind: str | None = strawberry.field(default=None, description="A custom tool's kind.")
    versions: list[int] | None = strawberry.field(
        default=None, description="A custom tool's versions (in `tool(id)` and mutations)."
    )
    definition: JSON | None = strawberry.field(
        default=None,
        description="A custom tool's whole registration body: yours, or one shared with "
        "your organisation (its header values' literal text then `[redacted]`, their "
        "`{secrets.name}` placeholders kept; the rest, URL and source included, as it is).",
    )
    shared_role: str | None = strawberry.field(
        default=None,
        description="A custom tool's sharing: null, private to its owner; else members of "
        "`sharedOrganisationId` act on it with at most this role.",
    )
    shared_organisation_id: strawberry.ID | None = strawberry.field(
        default=None, description="The organisation a shared custom tool is shared with."
    )

    @classmethod
    def of(cls, tool: RegisteredTool) -> Tool:
        return cls.from_view(tool_view(tool))

    @classmethod
    def from_view(cls, view: Mapping[str, Any]) -> Tool:
        """From `pasar_core.catalog.tool_view`'s JSON view."""
        return cls(
            id=view["id"],
            family=view["family"],
            title=view["title"],
            description=view["description"],
            input_schema=JSON(view["input_schema"]),
            output_schema=JSON(view["output_schema"]),
            auth_provider=view["auth_provider"],
            scopes=list(view["scopes"]),
            effect=Effect(view["effect"]),
            timeout_s=view["timeout_s"],
            source=view.get("source", "installed"),
            version=view.get("version"),
            kind=view.get("kind"),
            versions=view.get("versions"),
            definition=JSON(_definition(view)) if view.get("source") == "custom" else None,
            shared_role=view.get("shared_role"),
            shared_organisation_id=_id(view.get("shared_organisation_id")),
        )


def _id(value: Any) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


_DEFINITION_KEYS = ("id", "title", "description", "input_schema", "output_schema", "effect",
                    "timeout_s", "limits", "network", "implementation")  # fmt: skip


def _definition(view: Mapping[str, Any]) -> dict[str, Any] | None:
    if "implementation" not in view:
        return None
    return {key: view[key] for key in _DEFINITION_KEYS if key in view}
