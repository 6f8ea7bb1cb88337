"""The plugin contract's checks, one rule set for start-up (`build_registry`), the testing kit
(`pasar_core.testing`) and `pasar plugins check`: each check returns its problems instead of
raising, so a publisher sees all of them at once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pasar_core.errors import DuplicateRegistration, InvalidRegistration, PasarError
from pasar_core.schemas import schema_problem
from pasar_core.specs import (
    FAMILY_ID_PATTERN,
    TOOL_ID_PATTERN,
    AuthProviderSpec,
    Effect,
    ToolFamily,
    ToolSpec,
)


@dataclass(frozen=True, slots=True)
class ContractProblem:
    """One way a plugin breaks the contract; `code` is the error start-up refuses it with."""

    code: str
    message: str

    def __post_init__(self) -> None:
        # One line per problem, whatever a plugin's exception text holds.
        object.__setattr__(self, "message", " ".join(self.message.split()))

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def invalid(message: str) -> ContractProblem:
    return ContractProblem(InvalidRegistration.code, message)


def duplicate(message: str) -> ContractProblem:
    return ContractProblem(DuplicateRegistration.code, message)


def check_tool(plugin: str, family: ToolFamily, tool: ToolSpec) -> list[ContractProblem]:
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
    return [invalid(problem) for problem in problems]


def check_family(plugin: str, family: ToolFamily) -> list[ContractProblem]:
    where = f"plugin {plugin!r}, family {family.id!r}"
    problems = []
    if not FAMILY_ID_PATTERN.match(family.id):
        problems.append(f"plugin {plugin!r}: bad family id {family.id!r}")
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
    return [invalid(problem) for problem in problems]


def check_auth_provider(plugin: str, provider: AuthProviderSpec) -> list[ContractProblem]:
    where = f"plugin {plugin!r}, auth provider {provider.id!r}"
    problems = []
    if not FAMILY_ID_PATTERN.match(provider.id):
        problems.append(invalid(f"{where}: id is not lowercase_snake"))
    ids = [scope.id for scope in provider.scopes]
    if len(ids) != len(set(ids)):
        problems.append(duplicate(f"{where}: lists a scope twice"))
    unknown = {c for scope in provider.scopes for c in scope.covers} - set(ids)
    if unknown:
        problems.append(invalid(f"{where}: covered scopes not listed: {sorted(unknown)}"))
    return problems


def check_tool_scopes(
    plugin: str, tool: ToolSpec, providers: Mapping[str, AuthProviderSpec]
) -> list[ContractProblem]:
    """A tool naming a registered provider may only declare scopes that provider lists."""
    provider = providers.get(tool.auth_provider or "")
    if provider is None:
        return []
    unknown = tool.scopes - {scope.id for scope in provider.scopes}
    if not unknown:
        return []
    return [
        invalid(
            f"plugin {plugin!r}, tool {tool.id!r}: scopes unknown to provider "
            f"{provider.id!r}: {', '.join(sorted(unknown))}"
        )
    ]


def refusal(problems: Iterable[ContractProblem]) -> PasarError | None:
    """The error start-up refuses these problems with (all of them listed), or None."""
    found = list(problems)
    if not found:
        return None
    listed = "invalid plugin registrations:\n  " + "\n  ".join(p.message for p in found)
    if any(problem.code == DuplicateRegistration.code for problem in found):
        return DuplicateRegistration(listed)
    return InvalidRegistration(listed)
