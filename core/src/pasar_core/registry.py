"""Hook results -> a checked, immutable registry of tool families, and safe tool invocation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast

import pluggy
from jsonschema import Draft202012Validator

from pasar_core.errors import (
    DuplicateRegistration,
    InvalidRegistration,
    PasarError,
    PluginError,
    ToolInputInvalid,
    ToolNotFound,
    ToolOutputInvalid,
    ToolResultTooLarge,
    ToolTimeout,
    UnknownTools,
    ValidationFailed,
)
from pasar_core.results import DEFAULT_MAX_TOOL_RESULT_BYTES, is_small, model_json, size_floor
from pasar_core.schemas import schema_problem, validation_errors
from pasar_core.specs import (
    FAMILY_ID_PATTERN,
    TOOL_ID_PATTERN,
    AuthProviderSpec,
    Effect,
    LLMProviderSpec,
    ToolContext,
    ToolFamily,
    ToolSpec,
)


@dataclass(frozen=True, slots=True)
class RegisteredTool:
    spec: ToolSpec
    family: ToolFamily
    plugin: str
    input_validator: Draft202012Validator
    output_validator: Draft202012Validator
    fingerprint: str = ""
    """What makes this tool's behaviour differ from another of the same id: empty for installed
    tools (fixed for the process), the version's content hash for custom tools."""
    source: str = "installed"
    """`installed` (a plugin in the server's environment), `sandboxed` or `custom`."""
    version: int | None = None
    """A custom tool's version."""


@dataclass(frozen=True, slots=True)
class Invoked:
    """A tool call's checked result, and the JSON text the model reads for it."""

    result: Any
    text: str


@dataclass(frozen=True, slots=True)
class Registry:
    """What the installed plugins offer, checked once at start-up."""

    families: Mapping[str, ToolFamily] = field(default_factory=dict)
    tools: Mapping[str, RegisteredTool] = field(default_factory=dict)
    llm_providers: Mapping[str, LLMProviderSpec] = field(default_factory=dict)
    family_plugins: Mapping[str, str] = field(default_factory=dict)
    auth_providers: Mapping[str, AuthProviderSpec] = field(default_factory=dict)
    max_result_bytes: int = DEFAULT_MAX_TOOL_RESULT_BYTES
    """The most JSON any tool's result may be, as the model would read it."""

    def tool(self, tool_id: str) -> RegisteredTool:
        try:
            return self.tools[tool_id]
        except KeyError:
            raise ToolNotFound(tool_id) from None

    def with_tools(
        self, tools: Iterable[RegisteredTool], families: Iterable[ToolFamily] = ()
    ) -> Registry:
        """This registry plus `tools` (an owner's custom tools, sandboxed plugins' proxies) and
        their `families`; an id already present is refused, never replaced."""
        added = {tool.spec.id: tool for tool in tools}
        extra_families = {family.id: family for family in families}
        clash = sorted(set(added) & set(self.tools)) + sorted(
            f"family {family_id}" for family_id in set(extra_families) & set(self.families)
        )
        if clash:
            raise DuplicateRegistration(f"registered twice: {', '.join(clash)}")
        plugins = {tool.family.id: tool.plugin for tool in added.values()}
        return replace(
            self,
            tools={**self.tools, **added},
            families={**self.families, **extra_families},
            family_plugins={**self.family_plugins, **plugins},
        )

    def fingerprint(self, tool_ids: Iterable[str]) -> str:
        """Tells apart registries in which the same ids name different tools (another version
        of a custom tool): part of the key of anything built from these tools."""
        return "|".join(self.tools[t].fingerprint if t in self.tools else "?" for t in tool_ids)

    def check_tool_settings(
        self, tool_settings: Mapping[str, Any], tool_ids: Iterable[str]
    ) -> None:
        """Each family's settings must fit its `settings_schema`, and belong to a chosen tool."""
        chosen = {self.tool(tool_id).family.id for tool_id in tool_ids}
        problems: list[dict[str, str]] = []
        for family_id, value in tool_settings.items():
            family = self.families.get(family_id)
            if family is None or family_id not in chosen:
                problems.append(
                    {"path": f"/config/tool_settings/{family_id}",
                     "message": "no chosen tool belongs to this family"}
                )  # fmt: skip
                continue
            schema = family.settings_schema or {"type": "object", "additionalProperties": False}
            for problem in validation_errors(Draft202012Validator(schema), value):
                path = f"/config/tool_settings/{family_id}{problem['path'].rstrip('/')}"
                problems.append({"path": path, "message": problem["message"]})
        if problems:
            first = problems[0]
            raise ValidationFailed(
                f"invalid tool settings: {first['path']}: {first['message']}",
                details={"errors": problems},
            )

    def family_secrets(self, tool_id: str) -> tuple[str, ...]:
        return self.tool(tool_id).family.secrets

    def require_tools(self, tool_ids: Iterable[str]) -> None:
        """Refuse ids no plugin provides, naming all of them at once."""
        unknown = [tool_id for tool_id in tool_ids if tool_id not in self.tools]
        if unknown:
            raise UnknownTools(unknown)

    async def invoke(self, tool_id: str, ctx: ToolContext, args: Any) -> Any:
        """Validate input, run the tool within its timeout, check its output (size, schema)."""
        return (await self.invoke_for_model(tool_id, ctx, args)).result

    async def invoke_for_model(self, tool_id: str, ctx: ToolContext, args: Any) -> Invoked:
        """`invoke`, also giving the JSON text the model reads (made once, for the size cap).

        A small result is checked inline; a bigger one in a worker thread, so that measuring,
        serialising and validating it never blocks the event loop.
        """
        tool = self.tool(tool_id)
        problems = validation_errors(tool.input_validator, args)
        if problems:
            raise ToolInputInvalid(
                f"invalid input for {tool_id}: {problems[0]['path']}: {problems[0]['message']}",
                details={"tool": tool_id, "errors": problems},
            )
        try:
            async with asyncio.timeout(tool.spec.timeout_s):
                result = await tool.spec.run(ctx, args)
        except TimeoutError:
            raise ToolTimeout(
                f"{tool_id} did not finish within {tool.spec.timeout_s:g} s",
                details={"tool": tool_id},
            ) from None
        except PasarError:
            raise
        except Exception as error:  # a plugin bug must not escape as an anonymous crash
            raise PluginError(tool.plugin, f"{tool_id} raised {type(error).__name__}") from error
        if is_small(result):
            return self._checked(tool, result)
        return await asyncio.to_thread(self._checked_large, tool, result)

    def _checked_large(self, tool: RegisteredTool, result: Any) -> Invoked:
        if size_floor(result, self.max_result_bytes) > self.max_result_bytes:
            raise ToolResultTooLarge(tool.spec.id, self.max_result_bytes)
        return self._checked(tool, result)

    def _checked(self, tool: RegisteredTool, result: Any) -> Invoked:
        tool_id = tool.spec.id
        try:
            text = model_json(result)
        except (ValueError, TypeError, RecursionError) as error:
            raise PluginError(
                tool.plugin, f"{tool_id} returned output that is not JSON ({error})"
            ) from None
        if len(text) > self.max_result_bytes:  # ASCII: characters are bytes
            raise ToolResultTooLarge(tool_id, self.max_result_bytes)
        try:
            problems = validation_errors(tool.output_validator, result)
        except RecursionError:
            raise PluginError(tool.plugin, f"{tool_id} returned output nested too deep") from None
        if problems:
            raise ToolOutputInvalid(
                tool.plugin,
                f"{tool_id} returned output that does not match its output_schema: "
                f"{problems[0]['path']}: {problems[0]['message']}",
            )
        return Invoked(result, text)


def _check_tool(plugin: str, family: ToolFamily, tool: ToolSpec) -> list[str]:
    where = f"plugin {plugin!r}, family {family.id!r}, tool {tool.id!r}"
    problems = []
    if not TOOL_ID_PATTERN.match(tool.id):
        problems.append(f"{where}: id must look like 'service:action' (lowercase, digits, _)")
    if not tool.title.strip() or not tool.description.strip():
        problems.append(f"{where}: title and description must not be empty")
    for label, schema in (
        ("input_schema", tool.input_schema),
        ("output_schema", tool.output_schema),
    ):
        problem = schema_problem(schema)
        if problem:
            problems.append(f"{where}: {label} is not valid JSON Schema 2020-12: {problem}")
    if tool.input_schema.get("type") != "object":
        problems.append(f"{where}: input_schema must have type 'object'")
    effect: object = tool.effect  # plugins are untyped callers: check the runtime type
    if not isinstance(effect, Effect):
        problems.append(f"{where}: effect must be a pasar_core.Effect")
    if tool.scopes and not tool.auth_provider:
        problems.append(f"{where}: scopes need an auth_provider")
    if tool.timeout_s <= 0:
        problems.append(f"{where}: timeout_s must be positive")
    run: object = tool.run
    if not callable(run):
        problems.append(f"{where}: run must be an async callable")
    return problems


def _check_family(plugin: str, family: ToolFamily) -> list[str]:
    where = f"plugin {plugin!r}, family {family.id!r}"
    problems = []
    if family.settings_schema is not None:
        problem = schema_problem(family.settings_schema)
        if problem:
            problems.append(f"{where}: settings_schema is not valid JSON Schema: {problem}")
        elif family.settings_schema.get("type") != "object":
            problems.append(f"{where}: settings_schema must have type 'object'")
    problems.extend(
        f"{where}: secret name {name!r} must be lowercase letters, digits and _"
        for name in family.secrets
        if not FAMILY_ID_PATTERN.match(name)
    )
    return problems


def build_registry(
    pm: pluggy.PluginManager, *, max_result_bytes: int = DEFAULT_MAX_TOOL_RESULT_BYTES
) -> Registry:
    """Collect every plugin's families and providers; refuse duplicates and invalid specs.
    `max_result_bytes` caps every tool's result (JSON as the model reads it)."""
    families: dict[str, ToolFamily] = {}
    family_plugins: dict[str, str] = {}
    tools: dict[str, RegisteredTool] = {}
    problems: list[str] = []
    for impl in pm.hook.register_tool_families.get_hookimpls():
        families_of_plugin = cast("Iterable[object]", impl.function() or ())
        for family in families_of_plugin:
            if not isinstance(family, ToolFamily):
                raise InvalidRegistration(
                    f"plugin {impl.plugin_name!r} returned {type(family).__name__}, not ToolFamily"
                )
            if not FAMILY_ID_PATTERN.match(family.id):
                problems.append(f"plugin {impl.plugin_name!r}: bad family id {family.id!r}")
            problems.extend(_check_family(impl.plugin_name, family))
            if family.id in families:
                raise DuplicateRegistration(
                    f"tool family {family.id!r} is registered by both "
                    f"{family_plugins[family.id]!r} and {impl.plugin_name!r}"
                )
            families[family.id] = family
            family_plugins[family.id] = impl.plugin_name
            for tool in family.tools:
                if tool.id in tools:
                    raise DuplicateRegistration(
                        f"tool id {tool.id!r} is registered by both "
                        f"{tools[tool.id].plugin!r} and {impl.plugin_name!r}"
                    )
                tool_problems = _check_tool(impl.plugin_name, family, tool)
                problems.extend(tool_problems)
                if tool_problems:
                    continue
                tools[tool.id] = RegisteredTool(
                    spec=tool,
                    family=family,
                    plugin=impl.plugin_name,
                    input_validator=Draft202012Validator(tool.input_schema),
                    output_validator=Draft202012Validator(tool.output_schema),
                )
    if problems:
        raise InvalidRegistration("invalid plugin registrations:\n  " + "\n  ".join(problems))
    providers: dict[str, LLMProviderSpec] = {}
    for impl in pm.hook.register_llm_providers.get_hookimpls():
        providers_of_plugin = cast("Iterable[object]", impl.function() or ())
        for provider in providers_of_plugin:
            if not isinstance(provider, LLMProviderSpec):
                raise InvalidRegistration(
                    f"plugin {impl.plugin_name!r} returned {type(provider).__name__}, "
                    "not LLMProviderSpec"
                )
            if provider.id in providers:
                raise DuplicateRegistration(
                    f"LLM provider {provider.id!r} is registered twice (again by {impl.plugin_name!r})"
                )
            providers[provider.id] = provider
    auth_providers = _collect_auth_providers(pm)
    _check_tool_scopes(tools, auth_providers)
    return Registry(
        families=families,
        tools=tools,
        llm_providers=providers,
        family_plugins=family_plugins,
        auth_providers=auth_providers,
        max_result_bytes=max_result_bytes,
    )


def _collect_auth_providers(pm: pluggy.PluginManager) -> dict[str, AuthProviderSpec]:
    """Every plugin's OAuth providers; duplicate ids and unknown covered scopes are refused."""
    found: dict[str, AuthProviderSpec] = {}
    owners: dict[str, str] = {}
    hook = getattr(pm.hook, "register_auth_providers", None)
    for impl in hook.get_hookimpls() if hook is not None else ():
        for provider in cast("Iterable[object]", impl.function() or ()):
            if not isinstance(provider, AuthProviderSpec):
                raise InvalidRegistration(
                    f"plugin {impl.plugin_name!r} returned {type(provider).__name__}, "
                    "not AuthProviderSpec"
                )
            if provider.id in found:
                raise DuplicateRegistration(
                    f"auth provider {provider.id!r} is registered by both "
                    f"{owners[provider.id]!r} and {impl.plugin_name!r}"
                )
            if not FAMILY_ID_PATTERN.match(provider.id):
                raise InvalidRegistration(
                    f"auth provider id {provider.id!r} is not lowercase_snake"
                )
            ids = [scope.id for scope in provider.scopes]
            if len(ids) != len(set(ids)):
                raise DuplicateRegistration(f"auth provider {provider.id!r} lists a scope twice")
            unknown = {c for scope in provider.scopes for c in scope.covers} - set(ids)
            if unknown:
                raise InvalidRegistration(
                    f"auth provider {provider.id!r}: covered scopes not listed: {sorted(unknown)}"
                )
            found[provider.id] = provider
            owners[provider.id] = impl.plugin_name
    return found


def _check_tool_scopes(
    tools: Mapping[str, RegisteredTool], providers: Mapping[str, AuthProviderSpec]
) -> None:
    """A tool naming a registered provider may only declare scopes that provider lists."""
    problems = []
    for tool in tools.values():
        provider = providers.get(tool.spec.auth_provider or "")
        if provider is None:
            continue
        unknown = tool.spec.scopes - {scope.id for scope in provider.scopes}
        if unknown:
            problems.append(
                f"plugin {tool.plugin!r}, tool {tool.spec.id!r}: scopes unknown to provider "
                f"{provider.id!r}: {', '.join(sorted(unknown))}"
            )
    if problems:
        raise InvalidRegistration("invalid plugin registrations:\n  " + "\n  ".join(problems))
