"""What travels on the sandbox queue: requests (JSON), replies (JSON), and typed errors again.

A request names one operation and carries everything the worker needs, so a worker holds no
state of its own beyond its warm containers:

    {"op": "python", "tool": {"id", "version", "source", "entrypoint", "limits", "network"},
     "args": {...}}
    {"op": "plugin.manifest", "plugin": {"name", "version", "image", "revision", "limits"}}
    {"op": "plugin.invoke", "plugin": {...}, "tool": "acme:read", "args": {...},
     "context": {"user_id", "agent_id", "execution_id", "settings", "secrets", "oauth"},
     "scope": "<user id>"}

A reply is `{"ok": true, "result": ..., "stdout", "stderr", "cold", "container", "calls"}` or
`{"ok": false, "error": {"code", "message", "details"}}`; `raise_reply_error` turns the latter
back into the `PasarError` subclass of that code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from pasar_core import errors
from pasar_core.errors import PasarError, SandboxCrashed, SandboxedToolError
from pasar_core.sandbox.limits import NetworkPolicy, SandboxLimits
from pasar_core.sandbox.workloads import PythonTool

MAX_MESSAGE_CHARS = 2000


def _subclasses(base: type[PasarError]) -> Iterator[type[PasarError]]:
    for sub in base.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _classes_by_code() -> dict[str, type[PasarError]]:
    found: dict[str, type[PasarError]] = {}
    for kind in _subclasses(PasarError):
        if kind.__module__ == errors.__name__:
            found.setdefault(kind.code, kind)  # the most general class of each code
    return found


ERROR_CLASSES = _classes_by_code()


def error_reply(error: PasarError) -> dict[str, Any]:
    return {"ok": False, "error": {"code": error.code, "message": error.message[:MAX_MESSAGE_CHARS],
                                   "details": _json_details(error.details)}}  # fmt: skip


def _json_details(details: Mapping[str, Any]) -> dict[str, Any]:
    kept = (str, int, float, bool, list, dict, type(None))
    return {str(key): value for key, value in details.items() if isinstance(value, kept)}


def reply_error(reply: Mapping[str, Any]) -> PasarError:
    """The typed error a failed reply carries (a sandboxed plugin's own codes included)."""
    error = reply.get("error")
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or "SANDBOX_CRASHED")
    message = str(error.get("message") or code)[:MAX_MESSAGE_CHARS]
    raw_details = error.get("details")
    details = dict(raw_details) if isinstance(raw_details, dict) else {}
    kind = ERROR_CLASSES.get(code)
    if kind is None:
        return SandboxedToolError.of(code)(message, details=details)
    built = kind.__new__(kind)
    PasarError.__init__(built, message, details=details)
    for attribute in ("plugin", "tool_id", "name"):
        if attribute in details and not hasattr(built, attribute):
            setattr(built, attribute, details[attribute])
    return built


def ok_reply(result: Any, **extra: Any) -> dict[str, Any]:
    return {"ok": True, "result": result, **extra}


def python_request(tool: PythonTool, args: Any) -> dict[str, Any]:
    return {
        "op": "python",
        "tool": {
            "id": tool.tool_id,
            "version": tool.version,
            "source": tool.source,
            "entrypoint": tool.entrypoint,
            "limits": dataclasses.asdict(tool.limits),
            "network": {
                "allow_hosts": list(tool.network.allow_hosts),
                "opened_hosts": list(tool.network.opened_hosts),
            },
        },
        "args": args,
    }


def python_tool_of(request: Mapping[str, Any]) -> PythonTool:
    tool = request.get("tool")
    if not isinstance(tool, dict):
        raise SandboxCrashed("a python request without its tool")
    try:
        return PythonTool(
            tool_id=str(tool["id"]),
            version=int(tool["version"]),
            source=str(tool["source"]),
            entrypoint=str(tool["entrypoint"]),
            limits=SandboxLimits(**tool["limits"]),
            network=NetworkPolicy(
                allow_hosts=tuple(str(host) for host in tool["network"]["allow_hosts"]),
                opened_hosts=tuple(str(host) for host in tool["network"].get("opened_hosts", ())),
            ),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise SandboxCrashed(f"a malformed python request: {type(error).__name__}") from None
