"""Typed errors. Each carries a stable `code`; the API edges map them to 4xx and GraphQL codes."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar


class PasarError(Exception):
    """Base of every error a user may see. `status` is the HTTP status the REST edge uses."""

    code: ClassVar[str] = "INTERNAL"
    status: ClassVar[int] = 500

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


class BadRequest(PasarError):
    code = "BAD_REQUEST"
    status = 400


class ValidationFailed(PasarError):
    """Input that does not fit its schema; `details["errors"]` lists each problem."""

    code = "VALIDATION_FAILED"
    status = 422


class PayloadTooLarge(PasarError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413


class Unauthenticated(PasarError):
    code = "UNAUTHENTICATED"
    status = 401


class Unavailable(PasarError):
    """The server is too busy for this request right now (every database connection is in
    use); `details["retry_after_s"]` says when to try again (REST: the Retry-After header)."""

    code = "UNAVAILABLE"
    status = 503

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message, details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


class Forbidden(PasarError):
    code = "FORBIDDEN"
    status = 403


class InsufficientRole(Forbidden):
    """The caller's role in the organisation (or the API key's) does not allow the operation."""

    code = "INSUFFICIENT_ROLE"


class RoleEscalation(Forbidden):
    """A role above the caller's own was asked for (an API key, a member's role)."""

    code = "ROLE_ESCALATION"


class ConnectionNotAttached(Forbidden):
    """A run of another member's agent needs a provider nobody attached a grant for: nobody's
    grant is used implicitly (attach one with PUT /agents/{id}/connections/{provider})."""

    code = "CONNECTION_NOT_ATTACHED"

    def __init__(self, provider: str) -> None:
        super().__init__(
            f"no {provider} connection is attached to this agent; a member attaches theirs "
            "explicitly (their grant is never used otherwise)",
            details={"provider": provider},
        )
        self.provider = provider


class LastAdmin(PasarError):
    """The change would leave the organisation without an admin."""

    code = "LAST_ADMIN"
    status = 409


class NotFound(PasarError):
    code = "NOT_FOUND"
    status = 404


class Conflict(PasarError):
    code = "CONFLICT"
    status = 409


class ApprovalNotPending(Conflict):
    """A decision for a run that waits on no approval, or for a call it does not wait on."""

    code = "APPROVAL_NOT_PENDING"


class ApprovalAlreadyDecided(Conflict):
    """A decision for a call that was already decided: each decision is used once."""

    code = "APPROVAL_ALREADY_DECIDED"


class ApprovalStale(Conflict):
    """A decision bound to arguments (`args_hash`) other than the ones the call waits with."""

    code = "APPROVAL_STALE"


class ApprovalIncomplete(ValidationFailed):
    """A decision request that leaves some of the pause's pending calls undecided."""

    code = "APPROVAL_INCOMPLETE"


class ApprovalExpired(PasarError):
    """The pause outlived `approval_ttl_s`: the run ended `failed` and takes no decision."""

    code = "APPROVAL_EXPIRED"
    status = 410


class ServiceUnavailable(PasarError):
    """A part the server depends on (Redis, a provider) is unreachable; try again later."""

    code = "UNAVAILABLE"
    status = 503


class UnknownTools(ValidationFailed):
    code = "UNKNOWN_TOOLS"

    def __init__(self, unknown: Iterable[str]) -> None:
        self.unknown = sorted(set(unknown))
        super().__init__(
            f"unknown tool ids: {', '.join(self.unknown)}", details={"unknown": self.unknown}
        )


class ToolNotFound(NotFound):
    code = "TOOL_NOT_FOUND"

    def __init__(self, tool_id: str) -> None:
        super().__init__(f"no tool with id {tool_id!r}", details={"tool": tool_id})
        self.tool_id = tool_id


class ToolInputInvalid(ValidationFailed):
    code = "TOOL_INPUT_INVALID"


class ToolError(PasarError):
    """Raised by a tool for an expected failure the model should read (bad path, missing file)."""

    code = "TOOL_ERROR"
    status = 422


class ToolTimeout(ToolError):
    code = "TOOL_TIMEOUT"


class ToolResultTooLarge(ToolError):
    """A tool's result is bigger than the server lets a model read (`max_tool_result_bytes`)."""

    code = "TOOL_RESULT_TOO_LARGE"

    def __init__(self, tool_id: str, max_bytes: int) -> None:
        super().__init__(
            f"{tool_id} returned more than {max_bytes} bytes of JSON, the most this server lets "
            "a tool return (PASAR_MAX_TOOL_RESULT_BYTES); ask for less at once: a smaller "
            "limit, range, page span or max_bytes, then read the rest in further calls",
            details={"tool": tool_id, "max_bytes": max_bytes},
        )


class PluginError(PasarError):
    """A plugin broke its contract or raised unexpectedly; records which plugin."""

    code = "PLUGIN_ERROR"
    status = 502

    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(f"plugin {plugin!r}: {message}", details={"plugin": plugin})
        self.plugin = plugin


class ToolOutputInvalid(PluginError):
    """A tool returned JSON that does not fit its own output schema (checked by the core)."""

    code = "TOOL_OUTPUT_INVALID"


class StartupError(PasarError):
    """The server refuses to boot: bad plugin, bad configuration."""

    code = "STARTUP_ERROR"


class InvalidRegistration(StartupError):
    code = "INVALID_REGISTRATION"


class DuplicateRegistration(InvalidRegistration):
    code = "DUPLICATE_REGISTRATION"


class PluginStartupFailed(StartupError):
    """A plugin's `startup` hook raised: the server does not boot, and says which plugin."""

    code = "PLUGIN_STARTUP_FAILED"

    def __init__(self, plugin: str, error: BaseException) -> None:
        reason = (
            error.message if isinstance(error, PasarError) else f"{type(error).__name__}: {error}"
        )
        super().__init__(f"plugin {plugin!r} failed to start: {reason}", details={"plugin": plugin})
        self.plugin = plugin


class ExtrasOutsideNamespace(StartupError):
    """A plugin's `startup` wrote `services.extras` keys outside its own namespaces."""

    code = "EXTRAS_OUTSIDE_NAMESPACE"

    def __init__(self, keys: list[str], namespaces: list[str]) -> None:
        super().__init__(
            f"it set services.extras keys {', '.join(map(repr, keys))} outside its namespaces "
            f"({', '.join(f'{n}.' for n in namespaces)})",
            details={"keys": keys, "namespaces": namespaces},
        )


class PluginNotFound(StartupError):
    code = "PLUGIN_NOT_FOUND"

    def __init__(self, name: str, reason: str | None = None) -> None:
        super().__init__(
            f"{name}: {reason}"
            if reason
            else f"no installed plugin is named {name!r} (entry-point group 'pasar')"
        )
        self.name = name


class ProviderUnavailable(PasarError):
    """A model provider cannot be used: its package is missing or its key/base URL unset."""

    code = "PROVIDER_UNAVAILABLE"
    status = 422


class ProviderNotFound(ValidationFailed):
    code = "UNKNOWN_PROVIDER"


class ToolNotPermitted(Forbidden):
    """The agent may not call this tool: it did not declare it, or its scopes exceed the agent's."""

    code = "NOT_PERMITTED"

    def __init__(self, tool_id: str, reason: str) -> None:
        super().__init__(f"this agent may not call {tool_id}: {reason}", details={"tool": tool_id})
        self.tool_id, self.reason = tool_id, reason


class ReauthorizationRequired(Forbidden):
    """The user must (re)connect a provider: no grant, a revoked grant, or scopes missing.
    `auth_url` is a consent link when the provider is configured."""

    code = "AUTH_REQUIRED"

    def __init__(
        self,
        provider: str,
        reason: str,
        *,
        missing: Iterable[str] = (),
        auth_url: str | None = None,
        tool_id: str | None = None,
    ) -> None:
        self.provider, self.reason = provider, reason
        self.missing = sorted(set(missing))
        self.auth_url, self.tool_id = auth_url, tool_id
        details: dict[str, Any] = {"provider": provider, "reason": reason, "missing": self.missing}
        if auth_url:
            details["auth_url"] = auth_url
        if tool_id:
            details["tool"] = tool_id
        super().__init__(f"reconnect {provider}: {reason}", details=details)


class OAuthNotConfigured(PasarError):
    """The server has no OAuth client for a provider (PASAR_<PROVIDER>_CLIENT_ID unset)."""

    code = "OAUTH_NOT_CONFIGURED"
    status = 503


class OAuthProviderError(PasarError):
    """The provider's token or revoke endpoint failed for a reason worth retrying later."""

    code = "OAUTH_PROVIDER_ERROR"
    status = 502


class CredentialsUnreadable(ReauthorizationRequired):
    """A stored grant's tokens fail to decrypt (changed in the database, copied from another
    user's row, or sealed with a key this server no longer has); the grant is marked
    `needs_reauth` and the user must connect the provider again."""

    code = "CREDENTIALS_UNREADABLE"


class SecretUnreadable(PasarError):
    """A stored agent secret fails to decrypt; the user must set it again."""

    code = "SECRET_UNREADABLE"
    status = 409

    def __init__(self, name: str) -> None:
        super().__init__(
            f"the agent's secret {name!r} cannot be decrypted (changed in the database, copied "
            "from another agent, or sealed with a key this server no longer has); set it again",
            details={"secret": name},
        )
        self.name = name


class ConsentRefused(BadRequest):
    """A consent link or callback that cannot go on; nothing was stored."""

    code = "CONSENT_REFUSED"


class ConsentStateInvalid(ConsentRefused):
    """Unknown, already used, malformed, or made for another provider."""

    code = "CONSENT_STATE_INVALID"


class ConsentStateExpired(ConsentRefused):
    code = "CONSENT_STATE_EXPIRED"


class ConsentNotGranted(ConsentRefused):
    """The person declined at the provider, or the provider reported an error."""

    code = "CONSENT_NOT_GRANTED"


class ConsentCodeRejected(ConsentRefused):
    """No authorization code, or the provider refused to exchange it."""

    code = "CONSENT_CODE_REJECTED"


class ConsentWrongBrowser(Forbidden):
    """The callback came to a browser that did not start this consent (no or another cookie):
    the two-browser attack. The state is left as it was, so nobody can burn it this way."""

    code = "CONSENT_WRONG_BROWSER"


class SandboxError(PasarError):
    """A sandboxed workload (custom tool, untrusted plugin) could not run to a clean result."""

    code = "SANDBOX_ERROR"
    status = 502


class SandboxUnavailable(SandboxError):
    """No Docker daemon answers (or it cannot apply the sandbox's policy); says how to fix it."""

    code = "SANDBOX_UNAVAILABLE"
    status = 503


class SandboxBusy(SandboxUnavailable):
    """Every container this worker may run is busy and none freed up in time."""

    code = "SANDBOX_BUSY"


class SandboxTimeout(SandboxError):
    """The call ran past its wall-clock limit; its container was killed."""

    code = "SANDBOX_TIMEOUT"
    status = 504


class SandboxMemory(SandboxError):
    """The container ran out of its memory limit and was OOM-killed."""

    code = "SANDBOX_MEMORY"
    status = 422


class SandboxOutputTooLarge(SandboxError):
    """The workload wrote more stdout or stderr, or returned a larger result, than allowed."""

    code = "SANDBOX_OUTPUT_TOO_LARGE"
    status = 422


class SandboxCrashed(SandboxError):
    """The container exited or broke the runner protocol (a crash, `os._exit`, a killed runner)."""

    code = "SANDBOX_CRASHED"


class SandboxedToolError(ToolError):
    """A typed error a sandboxed plugin's tool raised; `of(code)` is the subclass carrying the
    plugin's own code (e.g. `WEB_TARGET_REFUSED`), so callers see the same code as in-process."""

    @staticmethod
    @functools.cache
    def of(code: str) -> type[SandboxedToolError]:
        if not _REMOTE_CODE.fullmatch(code):
            return SandboxedToolError
        return type("SandboxedToolError", (SandboxedToolError,), {"code": code})


_REMOTE_CODE = re.compile(r"[A-Z][A-Z0-9_]{1,63}")


class CustomToolError(ToolError):
    """A custom tool's own failure, as its author should read it (no host paths, own frames)."""

    code = "CUSTOM_TOOL_ERROR"


class ToolSourceInvalid(CustomToolError):
    code = "TOOL_SOURCE_INVALID"


class ToolEntrypointMissing(CustomToolError):
    code = "TOOL_ENTRYPOINT_MISSING"


class ToolRaised(CustomToolError):
    code = "TOOL_RAISED"


class ToolResultInvalid(CustomToolError):
    code = "TOOL_RESULT_INVALID"


class ToolHttpStatus(CustomToolError):
    """An HTTP custom tool's API answered an error status (4xx, 5xx)."""

    code = "TOOL_HTTP_STATUS"


class ToolSecretMissing(CustomToolError):
    """An HTTP custom tool's header names a secret the agent does not have."""

    code = "TOOL_SECRET_MISSING"


class ToolDefinitionInvalid(ValidationFailed):
    """A custom tool's registration body breaks a rule; `details["errors"]` says where."""

    code = "TOOL_DEFINITION_INVALID"


class ToolSchemaInvalid(ToolDefinitionInvalid):
    """An input or output schema is not valid JSON Schema 2020-12 (checked on the metaschema)."""

    code = "TOOL_SCHEMA_INVALID"


class ToolSchemaRemoteRef(ToolDefinitionInvalid):
    """A schema points outside itself (`$ref` to a URL or file, `$id`, another `$schema`)."""

    code = "TOOL_SCHEMA_REMOTE_REF"


class ToolSchemaTooLarge(ToolDefinitionInvalid):
    """A schema is bigger or nested deeper than a custom tool may use."""

    code = "TOOL_SCHEMA_TOO_LARGE"


class ToolSchemaPatternUnsupported(ToolDefinitionInvalid):
    """A `pattern` the linear-time regex engine (RE2) cannot run: backreferences, lookaround,
    possessive quantifiers, or a program too large."""

    code = "TOOL_SCHEMA_PATTERN_UNSUPPORTED"


class ToolIdTaken(Conflict):
    """The id belongs to an installed plugin, a sandboxed plugin or another user's namespace."""

    code = "TOOL_ID_TAKEN"


class ToolExists(Conflict):
    """You already registered this id: `PUT /tools/{id}` adds a version."""

    code = "TOOL_EXISTS"


class ToolInUse(Conflict):
    """The tool cannot be deleted while agents use it."""

    code = "TOOL_IN_USE"


class PluginPackageInvalid(ValidationFailed):
    """A package given to `plugins install --sandboxed` is not a pasar plugin (no `pasar`
    entry point, a manifest that breaks the contract, or a wheel that cannot be installed)."""

    code = "PLUGIN_PACKAGE_INVALID"
