"""A sandboxed plugin's manifest: what its container said it offers, checked as untrusted data.

The manifest (families with their tools, schemas, effects, OAuth provider and scopes, settings
schema and secrets) must follow the same contract `build_registry` enforces for installed
plugins, and more, since nobody reviewed it: schemas follow the custom-tool rules (no remote
`$ref`, bounded, RE2 patterns), OAuth providers and scopes must be ones this server knows, and
no id may collide with an installed tool, another sandboxed plugin or a custom tool namespace.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pasar_core.custom_tools.schemas import check_user_schema
from pasar_core.errors import PasarError, PluginPackageInvalid
from pasar_core.registry import Registry
from pasar_core.specs import FAMILY_ID_PATTERN, TOOL_ID_PATTERN, Effect

MAX_FAMILIES = 20
MAX_TOOLS = 200
MAX_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class ManifestTool:
    id: str
    family: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    effect: Effect
    auth_provider: str | None
    scopes: frozenset[str]
    timeout_s: float


@dataclass(frozen=True, slots=True)
class ManifestFamily:
    id: str
    title: str
    description: str
    version: str
    settings_schema: dict[str, Any] | None
    secrets: tuple[str, ...]
    tools: tuple[ManifestTool, ...]


def _text(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise PluginPackageInvalid(f"the manifest's {what} must be text of 1 to {limit} characters")
    return value


def _schema(value: Any, where: str) -> dict[str, Any]:
    try:
        check_user_schema(value, where)
    except PasarError as error:
        raise PluginPackageInvalid(
            f"the plugin's {error.message}", details={"schema_error": error.code}
        ) from None
    assert isinstance(value, dict)
    return value


def _tool(raw: Any, family: str, registry: Registry) -> ManifestTool:
    if not isinstance(raw, dict):
        raise PluginPackageInvalid(f"family {family!r}: a tool is not an object")
    tool_id = raw.get("id")
    if not isinstance(tool_id, str) or not TOOL_ID_PATTERN.match(tool_id):
        raise PluginPackageInvalid(
            f"family {family!r}: tool id {str(tool_id)[:100]!r} is not service:action"
        )
    where = f"/{family}/{tool_id}"
    input_schema = _schema(raw.get("input_schema"), f"{where}/input_schema")
    if input_schema.get("type") != "object":
        raise PluginPackageInvalid(f"{tool_id}: input_schema must have type 'object'")
    output_schema = _schema(raw.get("output_schema"), f"{where}/output_schema")
    try:
        effect = Effect(str(raw.get("effect")))
    except ValueError:
        raise PluginPackageInvalid(
            f"{tool_id}: effect must be read, write, send or destructive"
        ) from None
    provider = raw.get("auth_provider")
    scopes = raw.get("scopes") or []
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise PluginPackageInvalid(f"{tool_id}: scopes must be a list of strings")
    if provider is not None:
        known = registry.auth_providers.get(str(provider))
        if known is None:
            raise PluginPackageInvalid(
                f"{tool_id}: auth provider {provider!r} is not one this server has",
                details={"providers": sorted(registry.auth_providers)},
            )
        unknown = set(scopes) - {scope.id for scope in known.scopes}
        if unknown:
            raise PluginPackageInvalid(
                f"{tool_id}: scopes unknown to {provider}: {sorted(unknown)}"
            )
    elif scopes:
        raise PluginPackageInvalid(f"{tool_id}: scopes need an auth_provider")
    timeout = raw.get("timeout_s")
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TIMEOUT_S
    ):
        raise PluginPackageInvalid(
            f"{tool_id}: timeout_s must be a number in (0, {MAX_TIMEOUT_S:g}]"
        )
    return ManifestTool(
        id=tool_id,
        family=family,
        title=_text(raw.get("title"), f"title of {tool_id}", 200),
        description=_text(raw.get("description"), f"description of {tool_id}", 4000),
        input_schema=input_schema,
        output_schema=output_schema,
        effect=effect,
        auth_provider=str(provider) if provider is not None else None,
        scopes=frozenset(scopes),
        timeout_s=float(timeout),
    )


def _family(raw: Any, registry: Registry) -> ManifestFamily:
    if not isinstance(raw, dict):
        raise PluginPackageInvalid("a family of the manifest is not an object")
    family_id = raw.get("id")
    if not isinstance(family_id, str) or not FAMILY_ID_PATTERN.match(family_id):
        raise PluginPackageInvalid(f"family id {str(family_id)[:100]!r} is not lowercase_snake")
    settings = raw.get("settings_schema")
    if settings is not None:
        settings = _schema(settings, f"/{family_id}/settings_schema")
        if settings.get("type") != "object":
            raise PluginPackageInvalid(f"{family_id}: settings_schema must have type 'object'")
    secrets = raw.get("secrets") or []
    if not isinstance(secrets, list) or not all(
        isinstance(s, str) and FAMILY_ID_PATTERN.match(s) for s in secrets
    ):
        raise PluginPackageInvalid(f"{family_id}: secrets must be lowercase_snake names")
    tools = raw.get("tools")
    if not isinstance(tools, list) or not tools:
        raise PluginPackageInvalid(f"family {family_id!r} has no tools")
    return ManifestFamily(
        id=family_id,
        title=_text(raw.get("title"), f"title of {family_id}", 200),
        description=_text(raw.get("description"), f"description of {family_id}", 4000),
        version=str(raw.get("version") or "0")[:64],
        settings_schema=settings,
        secrets=tuple(secrets),
        tools=tuple(_tool(tool, family_id, registry) for tool in tools),
    )


def parse_manifest(raw: Any, registry: Registry) -> tuple[ManifestFamily, ...]:
    """The checked families; `PLUGIN_PACKAGE_INVALID` for any breach (nothing is installed)."""
    families_raw = raw.get("families") if isinstance(raw, dict) else None
    if not isinstance(families_raw, list) or not families_raw:
        raise PluginPackageInvalid("the plugin registers no tool families")
    if len(families_raw) > MAX_FAMILIES:
        raise PluginPackageInvalid(f"the plugin registers more than {MAX_FAMILIES} families")
    families = tuple(_family(family, registry) for family in families_raw)
    tools = [tool for family in families for tool in family.tools]
    if len(tools) > MAX_TOOLS:
        raise PluginPackageInvalid(f"the plugin registers more than {MAX_TOOLS} tools")
    ids = [tool.id for tool in tools]
    if len(set(ids)) != len(ids) or len({f.id for f in families}) != len(families):
        raise PluginPackageInvalid("the plugin registers a tool or family id twice")
    return families


def namespaces(families: Iterable[ManifestFamily]) -> set[str]:
    """Every `service` (before the colon) and family id the plugin uses."""
    found: set[str] = set()
    for family in families:
        found.add(family.id)
        found.update(tool.id.split(":", 1)[0] for tool in family.tools)
    return found
