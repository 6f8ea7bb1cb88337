"""Hook results -> a checked, immutable registry of tool families, and safe tool invocation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast

import pluggy
from jsonschema import Draft202012Validator

from pasar_core.contract import (
    ContractProblem,
    check_auth_provider,
    check_family,
    check_tool,
    check_tool_scopes,
    duplicate,
    invalid,
    refusal,
)
from pasar_core.errors import (
    DuplicateRegistration,
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
from pasar_core.hook_calls import call_implementation, implementations
from pasar_core.results import DEFAULT_MAX_TOOL_RESULT_BYTES, is_small, model_json, size_floor
from pasar_core.schemas import validation_errors
from pasar_core.specs import (
    STRATEGY_ID_PATTERN,
    AuthProviderSpec,
    EmbeddingProviderSpec,
    LLMProviderSpec,
    StrategySpec,
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
    embedding_providers: Mapping[str, EmbeddingProviderSpec] = field(default_factory=dict)
    strategies: Mapping[str, StrategySpec] = field(default_factory=dict)
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


@dataclass(frozen=True, slots=True)
class HookCrash:
    """A registration hook that raised instead of returning its specs."""

    plugin: str
    hook: str
    error: Exception

    @property
    def what(self) -> str:
        return f"{self.hook} raised {type(self.error).__name__}: {self.error}"

    @property
    def problem(self) -> ContractProblem:
        return ContractProblem(PluginError.code, f"plugin {self.plugin!r}: {self.what}")


@dataclass(slots=True)
class _Collected:
    families: dict[str, ToolFamily] = field(default_factory=dict)
    family_plugins: dict[str, str] = field(default_factory=dict)
    tools: dict[str, RegisteredTool] = field(default_factory=dict)
    tool_plugins: dict[str, str] = field(default_factory=dict)
    llm_providers: dict[str, LLMProviderSpec] = field(default_factory=dict)
    embedding_providers: dict[str, EmbeddingProviderSpec] = field(default_factory=dict)
    strategies: dict[str, StrategySpec] = field(default_factory=dict)
    auth_providers: dict[str, AuthProviderSpec] = field(default_factory=dict)
    problems: list[ContractProblem] = field(default_factory=list)
    crashes: list[HookCrash] = field(default_factory=list)


def _results(
    pm: pluggy.PluginManager, hook: str, found: _Collected, arguments: Mapping[str, object]
) -> list[tuple[str, object]]:
    """(plugin name, returned item) for every implementation of a registration hook, each
    called with the `arguments` it names."""
    items: list[tuple[str, object]] = []
    for impl in reversed(implementations(pm, hook)):  # registration order: stable messages
        try:
            returned = cast("Iterable[object]", call_implementation(impl, arguments) or ())
            items.extend((impl.plugin_name, item) for item in returned)
        except Exception as error:  # a plugin's bug: reported, never an anonymous crash
            found.crashes.append(HookCrash(impl.plugin_name, hook, error))
    return items


def _wrong_type(plugin: str, item: object, expected: type) -> ContractProblem:
    return invalid(f"plugin {plugin!r} returned {type(item).__name__}, not {expected.__name__}")


def _collect(pm: pluggy.PluginManager, arguments: Mapping[str, object]) -> _Collected:
    """Every plugin's registrations, and every way they break the contract (none raised)."""
    found = _Collected()
    for plugin, family in _results(pm, "register_tool_families", found, arguments):
        if not isinstance(family, ToolFamily):
            found.problems.append(_wrong_type(plugin, family, ToolFamily))
            continue
        found.problems.extend(check_family(plugin, family))
        if family.id in found.families:
            found.problems.append(
                duplicate(
                    f"tool family {family.id!r} is registered by both "
                    f"{found.family_plugins[family.id]!r} and {plugin!r}"
                )
            )
            continue
        found.families[family.id] = family
        found.family_plugins[family.id] = plugin
        for tool in family.tools:
            if tool.id in found.tool_plugins:  # valid or not: named once, checked once
                found.problems.append(
                    duplicate(
                        f"tool id {tool.id!r} is registered by both "
                        f"{found.tool_plugins[tool.id]!r} and {plugin!r}"
                    )
                )
                continue
            found.tool_plugins[tool.id] = plugin
            tool_problems = check_tool(plugin, family, tool)
            found.problems.extend(tool_problems)
            if tool_problems:
                continue
            found.tools[tool.id] = RegisteredTool(
                spec=tool,
                family=family,
                plugin=plugin,
                input_validator=Draft202012Validator(tool.input_schema),
                output_validator=Draft202012Validator(tool.output_schema),
            )
    for plugin, provider in _results(pm, "register_llm_providers", found, arguments):
        if not isinstance(provider, LLMProviderSpec):
            found.problems.append(_wrong_type(plugin, provider, LLMProviderSpec))
        elif provider.id in found.llm_providers:
            found.problems.append(
                duplicate(f"LLM provider {provider.id!r} is registered twice (again by {plugin!r})")
            )
        else:
            found.llm_providers[provider.id] = provider
    for plugin, embedding in _results(pm, "register_embedding_providers", found, arguments):
        if not isinstance(embedding, EmbeddingProviderSpec):
            found.problems.append(_wrong_type(plugin, embedding, EmbeddingProviderSpec))
        elif embedding.id in found.embedding_providers:
            found.problems.append(
                duplicate(
                    f"embedding provider {embedding.id!r} is registered twice (again by {plugin!r})"
                )
            )
        else:
            found.embedding_providers[embedding.id] = embedding
    for plugin, strategy in _results(pm, "register_strategies", found, arguments):
        if not isinstance(strategy, StrategySpec):
            found.problems.append(_wrong_type(plugin, strategy, StrategySpec))
        elif not STRATEGY_ID_PATTERN.match(strategy.id):
            found.problems.append(
                invalid(f"plugin {plugin!r}: strategy id {strategy.id!r} must be snake_case")
            )
        elif strategy.id in found.strategies:
            found.problems.append(
                duplicate(f"strategy {strategy.id!r} is registered twice (again by {plugin!r})")
            )
        else:
            found.strategies[strategy.id] = strategy
    owners: dict[str, str] = {}
    for plugin, auth in _results(pm, "register_auth_providers", found, arguments):
        if not isinstance(auth, AuthProviderSpec):
            found.problems.append(_wrong_type(plugin, auth, AuthProviderSpec))
            continue
        if auth.id in found.auth_providers:
            found.problems.append(
                duplicate(
                    f"auth provider {auth.id!r} is registered by both "
                    f"{owners[auth.id]!r} and {plugin!r}"
                )
            )
            continue
        auth_problems = check_auth_provider(plugin, auth)
        found.problems.extend(auth_problems)
        if not auth_problems:
            found.auth_providers[auth.id] = auth
            owners[auth.id] = plugin
    for registered in found.tools.values():
        found.problems.extend(
            check_tool_scopes(registered.plugin, registered.spec, found.auth_providers)
        )
    return found


def registration_problems(
    pm: pluggy.PluginManager, *, hook_arguments: Mapping[str, object] | None = None
) -> list[ContractProblem]:
    """Every way `pm`'s plugins break the contract: what `build_registry` refuses to start with
    (there as one error), here all listed. Empty when they follow it."""
    found = _collect(pm, hook_arguments or {})
    return [crash.problem for crash in found.crashes] + found.problems


def build_registry(
    pm: pluggy.PluginManager,
    *,
    max_result_bytes: int = DEFAULT_MAX_TOOL_RESULT_BYTES,
    hook_arguments: Mapping[str, object] | None = None,
) -> Registry:
    """Collect every plugin's families and providers; refuse duplicates and invalid specs
    (`registration_problems` lists them). `max_result_bytes` caps every tool's result (JSON as
    the model reads it). `hook_arguments`: what the registration hooks are called with, each
    implementation getting only those it names (today's hooks take none; a later contract's
    may gain some without breaking plugins written before)."""
    found = _collect(pm, hook_arguments or {})
    for crash in found.crashes:
        raise PluginError(crash.plugin, crash.what) from crash.error
    error = refusal(found.problems)
    if error is not None:
        raise error
    return Registry(
        families=found.families,
        tools=found.tools,
        llm_providers=found.llm_providers,
        embedding_providers=found.embedding_providers,
        strategies=found.strategies,
        family_plugins=found.family_plugins,
        auth_providers=found.auth_providers,
        max_result_bytes=max_result_bytes,
    )
