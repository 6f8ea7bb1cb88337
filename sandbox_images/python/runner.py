"""pasar's in-container runner: JSON lines on stdin, JSON lines on stdout (protocol 1).

Runs inside the sandbox image with Debian's python3.11 and its standard library only (no pasar
code, no site-packages). One container serves one workload: a Python custom tool now, one
sandboxed plugin later. Requests and replies, one JSON object per line:

    {"id": 1, "op": "ping"}
    {"id": 2, "op": "load", "kind": "python", "source": "...", "entrypoint": "run",
     "caps": {"stdout_bytes": 65536, "stderr_bytes": 65536, "result_bytes": 1048576}}
    {"id": 3, "op": "call", "args": {...}}
    -> {"id": 3, "ok": true, "result": ..., "stdout": "...", "stderr": "...", "clean": true}
    -> {"id": 3, "ok": false, "error": {"code": "TOOL_RAISED", "message": "...", "details": {}},
        "stdout": "...", "stderr": "...", "clean": true}

`clean` is false when the call left something running (child processes, threads): the host then
retires the container. Sandboxed plugins (an image layer with pasar_core, pluggy, the wheel and
its dependencies under /opt/pasar): `load` with `"kind": "plugin", "plugin": <entry-point name>`
loads the plugin as the server would (`build_plugin_manager(enabled={name})`) and answers its
manifest; `invoke` runs one of its tools:

    {"id": 4, "op": "load", "kind": "plugin", "plugin": "acme", "caps": {...}}
    -> {"id": 4, "ok": true, "result": {"plugin": "acme", "families": [...]}, ...}
    {"id": 5, "op": "manifest"}  -> the same manifest again
    {"id": 6, "op": "invoke", "tool": "acme:read", "args": {...},
     "context": {"user_id": "...", "settings": {}, "secrets": {}, "oauth": null}}

A plugin tool's typed `PasarError` comes back as `PLUGIN_TOOL_ERROR` with its own code in
`details.code`. The plugin's `startup` hooks run at `load` on the container's one event loop
(which every `invoke` then uses), with a `services` that carries `extras` only; what they put
there reaches its tools' `ctx.extras`. `{"op": "close"}`, sent by the host before it removes the
container, runs the `shutdown` hooks.

The host never trusts this file: it enforces the timeout, the output caps and the line length on
its side too. What this file adds is clear, typed errors for the tool's author.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import json
import linecache
import os
import sys
import threading
import traceback
from typing import Any

PROTOCOL = 1
TOOL_FILENAME = "<tool>"
PLUGIN_PATHS = ("/opt/pasar/core", "/opt/pasar/plugin")
PLUGIN_FILES = "/opt/pasar/plugin/"
PLUGIN_STORAGE = "/tmp/pasar-files"  # noqa: S108 - the container's own tmpfs
MESSAGE_CHARS = 2000
DEFAULT_CAPS = {"stdout_bytes": 65536, "stderr_bytes": 65536, "result_bytes": 1048576}


class OutputLimitExceeded(BaseException):
    """Raised inside the tool when it writes past a cap (BaseException: `except Exception`
    in the tool does not swallow it; the runner reports the overflow even if it is caught)."""


class CappedWriter(io.TextIOBase):
    """The tool's sys.stdout / sys.stderr for one call: keeps at most `cap` UTF-8 bytes."""

    encoding = "utf-8"

    def __init__(self, name: str, cap: int) -> None:
        self.name, self.cap = name, cap
        self.size = 0
        self.overflowed = False
        self.parts: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        encoded = text.encode("utf-8", "replace")
        if self.overflowed or self.size + len(encoded) > self.cap:
            self.overflowed = True
            raise OutputLimitExceeded(self.name)
        self.size += len(encoded)
        self.parts.append(encoded.decode("utf-8"))
        return len(text)

    def text(self) -> str:
        return "".join(self.parts)


class ToolFailure(Exception):
    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message[:MESSAGE_CHARS], details or {}


class SandboxServices:
    """What a sandboxed plugin's `startup` and `shutdown` get as `services`: `extras` only (no
    database, registry or settings inside the sandbox)."""

    def __init__(self) -> None:
        self.extras: dict[str, Any] = {}
        self.sandboxed = True


class Runner:
    def __init__(self, replies: Any) -> None:
        self.replies = replies
        self.pid = os.getpid()
        self.function: Any = None
        self.plugin_tools: dict[str, Any] | None = None
        self.manifest: dict[str, Any] | None = None
        self.caps = dict(DEFAULT_CAPS)
        self.expected_pids = {1, self.pid}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.plugin_manager: Any = None
        self.plugin_services: SandboxServices | None = None

    # -- protocol -----------------------------------------------------------------------------

    def serve(self, requests: Any) -> None:
        for line in requests:
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("a request is a JSON object")
            except ValueError as error:
                self.reply({"id": None, "ok": False, "error": _error("PROTOCOL_ERROR", str(error))})
                continue
            self.reply(self.handle(request))

    def reply(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, ensure_ascii=False).encode("utf-8", "replace")
        self.replies.write(line + b"\n")
        self.replies.flush()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            result = {"protocol": PROTOCOL, "runner": "python", "python": sys.version.split()[0]}
            return {"id": request.get("id"), "ok": True, "result": result, "clean": True}
        if op == "load":
            return self.run_captured(request, self.load)
        if op == "call":
            return self.run_captured(request, self.call)
        if op == "invoke":
            return self.run_captured(request, self.invoke)
        if op == "manifest":
            return self.run_captured(request, self.loaded_manifest)
        if op == "close":
            return self.run_captured(request, self.close)
        return {"id": request.get("id"), "ok": False, "clean": True,
                "error": _error("PROTOCOL_ERROR", f"unknown op {op!r}")}  # fmt: skip

    def run_captured(self, request: dict[str, Any], action: Any) -> dict[str, Any]:
        """Run the tool's code with captured, capped stdout and stderr."""
        if request.get("op") == "load":
            caps = request.get("caps") or {}
            for key in DEFAULT_CAPS:
                if isinstance(caps.get(key), int) and caps[key] >= 0:
                    self.caps[key] = caps[key]
            relay = request.get("egress_relay_pid")  # the worker's relay runs beside the tool
            if isinstance(relay, int) and not isinstance(relay, bool):
                self.expected_pids.add(relay)
        out = CappedWriter("stdout", self.caps["stdout_bytes"])
        err = CappedWriter("stderr", self.caps["stderr_bytes"])
        reply: dict[str, Any] = {"id": request.get("id")}
        saved = sys.stdout, sys.stderr, sys.stdin
        sys.stdout, sys.stderr, sys.stdin = out, err, io.StringIO()
        try:
            try:
                value = action(request)
            finally:
                if os.getpid() != self.pid:  # a fork of the tool that returned: never reply
                    os._exit(0)
                sys.stdout, sys.stderr, sys.stdin = saved
            encoded = _encode_result(value)
            if len(encoded) > self.caps["result_bytes"]:
                raise ToolFailure(
                    "SANDBOX_OUTPUT_TOO_LARGE",
                    f"the result is larger than {self.caps['result_bytes']} bytes",
                    {"stream": "result", "limit": self.caps["result_bytes"]},
                )
            reply.update(ok=True, result=json.loads(encoded))
        except ToolFailure as failure:
            reply.update(ok=False, error=_error(failure.code, failure.message, failure.details))
        except OutputLimitExceeded as overflow:
            reply.update(ok=False, error=_overflow(str(overflow), self.caps))
        for writer in (out, err):
            if writer.overflowed:  # even if the tool caught OutputLimitExceeded
                reply.pop("result", None)
                reply.update(ok=False, error=_overflow(writer.name, self.caps))
        reply.update(
            stdout=out.text(), stderr=err.text(), clean=_nothing_left_running(self.expected_pids)
        )
        return reply

    # -- python custom tools ------------------------------------------------------------------

    def load(self, request: dict[str, Any]) -> Any:
        if self.function is not None or self.plugin_tools is not None:
            raise ToolFailure("PROTOCOL_ERROR", "a tool is already loaded in this container")
        if request.get("kind") == "plugin":
            return self.load_plugin(request)
        if request.get("kind") != "python":
            kind = request.get("kind")
            raise ToolFailure("PROTOCOL_ERROR", f"this runner loads python tools, not {kind!r}")
        if self.function is not None:
            raise ToolFailure("PROTOCOL_ERROR", "a tool is already loaded in this container")
        source, entrypoint = request.get("source"), request.get("entrypoint")
        if not isinstance(source, str) or not isinstance(entrypoint, str):
            raise ToolFailure("PROTOCOL_ERROR", "load needs a source and an entrypoint")
        try:
            code = compile(source, TOOL_FILENAME, "exec", dont_inherit=True)
        except SyntaxError as error:
            line = f"line {error.lineno}: " if error.lineno else ""
            details = {"line": error.lineno, "offset": error.offset}
            raise ToolFailure("TOOL_SOURCE_INVALID", f"{line}{error.msg}", details) from None
        except ValueError as error:  # e.g. null bytes
            raise ToolFailure("TOOL_SOURCE_INVALID", str(error)) from None
        linecache.cache[TOOL_FILENAME] = (len(source), None, source.splitlines(True), TOOL_FILENAME)
        namespace: dict[str, Any] = {"__name__": "pasar_tool", "__builtins__": __builtins__}
        try:
            exec(code, namespace)  # noqa: S102 - this is the sandbox's whole purpose
        except OutputLimitExceeded:
            raise
        except BaseException as error:  # SystemExit included: the runner keeps serving
            raise _raised(error, "while loading the tool") from None
        function = namespace.get(entrypoint)
        if not callable(function):
            found = "is not a function" if entrypoint in namespace else "is not defined"
            raise ToolFailure(
                "TOOL_ENTRYPOINT_MISSING",
                f"entrypoint {entrypoint!r} {found} in the tool's source",
                {"entrypoint": entrypoint},
            )
        self.function = function
        return {"entrypoint": entrypoint, "async": inspect.iscoroutinefunction(function)}

    def call(self, request: dict[str, Any]) -> Any:
        if self.function is None:
            raise ToolFailure("PROTOCOL_ERROR", "no tool is loaded in this container")
        try:
            value = self.function(request.get("args"))
            if inspect.isawaitable(value):
                value = asyncio.run(_awaited(value))
        except OutputLimitExceeded:
            raise
        except BaseException as error:  # SystemExit included: the runner keeps serving
            raise _raised(error, "") from None
        return value

    # -- sandboxed plugins -------------------------------------------------------------------

    def load_plugin(self, request: dict[str, Any]) -> Any:
        name = request.get("plugin")
        if not isinstance(name, str) or not name:
            raise ToolFailure("PROTOCOL_ERROR", "load of a plugin needs its entry-point name")
        for path in reversed(PLUGIN_PATHS):
            if path not in sys.path:
                sys.path.insert(0, path)
        try:
            from pasar_core.plugins import build_plugin_manager  # the layer's copy of pasar_core

            pm = build_plugin_manager(enabled={name})
            families = [f for found in pm.hook.register_tool_families() for f in found or ()]
        except OutputLimitExceeded:
            raise
        except BaseException as error:
            code = getattr(error, "code", None)
            if code == "PLUGIN_NOT_FOUND":
                raise ToolFailure(
                    "PLUGIN_PACKAGE_INVALID",
                    f"no installed distribution has a 'pasar' entry point named {name!r}",
                ) from None
            failure = _raised(error, "while loading the plugin")
            raise ToolFailure("PLUGIN_PACKAGE_INVALID", failure.message, failure.details) from None
        self.plugin_tools = {}
        manifest = []
        for family in families:
            manifest.append(_family_manifest(family))
            for tool in getattr(family, "tools", ()):
                self.plugin_tools[str(tool.id)] = tool
        self.manifest = {"plugin": name, "families": manifest}
        self.plugin_manager = pm
        self.start_plugin(name, sorted({name, *(str(family.id) for family in families)}))
        return self.manifest

    def start_plugin(self, name: str, namespaces: list[str]) -> None:
        """The plugin's `startup` hooks, as the server runs them (only `namespaces` written)."""
        from pasar_core.hook_calls import call_implementation, implementations
        from pasar_core.plugin_lifecycle import foreign_changes

        self.loop = asyncio.new_event_loop()
        self.plugin_services = SandboxServices()
        for impl in implementations(self.plugin_manager, "startup"):
            before = dict(self.plugin_services.extras)
            try:
                self.run_on_loop(call_implementation(impl, {"services": self.plugin_services}))
            except OutputLimitExceeded:
                raise
            except BaseException as error:
                failure = _raised(error, "")
                raise ToolFailure("PLUGIN_PACKAGE_INVALID", f"plugin {name!r} failed to start: "
                                  f"{failure.message}", failure.details) from None  # fmt: skip
            foreign = foreign_changes(before, self.plugin_services.extras, namespaces)
            if foreign:
                raise ToolFailure(
                    "PLUGIN_PACKAGE_INVALID",
                    f"plugin {name!r} failed to start: it set services.extras keys "
                    f"{', '.join(map(repr, foreign))} outside its namespaces "
                    f"({', '.join(n + '.' for n in namespaces)})",
                )

    def run_on_loop(self, value: Any) -> Any:
        """`value` awaited on the container's loop when it is awaitable; the loop's default
        executor is shut after each call, so no thread outlives it (the `clean` check)."""
        if not inspect.isawaitable(value) or self.loop is None:
            return value
        try:
            return self.loop.run_until_complete(_awaited(value))
        finally:
            self.loop.run_until_complete(self.loop.shutdown_default_executor())

    def close(self, request: dict[str, Any]) -> Any:
        """The plugin's `shutdown` hooks, last started first; each failure is reported, the
        others still run. Then the loop is closed."""
        if self.plugin_manager is None or self.plugin_services is None:
            return {"shut_down": []}
        from pasar_core.hook_calls import call_implementation, implementations

        shut_down: list[str] = []
        failures: list[dict[str, str]] = []
        for impl in reversed(implementations(self.plugin_manager, "shutdown")):
            try:
                self.run_on_loop(call_implementation(impl, {"services": self.plugin_services}))
                shut_down.append(impl.plugin_name)
            except OutputLimitExceeded:
                raise
            except BaseException as error:
                failure = _raised(error, "")
                failures.append({"plugin": impl.plugin_name, "message": failure.message})
        if self.loop is not None:
            self.loop.close()
        self.plugin_manager = self.plugin_services = self.loop = None
        self.plugin_tools = None
        return {"shut_down": shut_down, "failures": failures}

    def loaded_manifest(self, request: dict[str, Any]) -> Any:
        if self.manifest is None:
            raise ToolFailure("PROTOCOL_ERROR", "no plugin is loaded in this container")
        return self.manifest

    def invoke(self, request: dict[str, Any]) -> Any:
        if self.plugin_tools is None:
            raise ToolFailure("PROTOCOL_ERROR", "no plugin is loaded in this container")
        tool = self.plugin_tools.get(str(request.get("tool")))
        if tool is None:
            raise ToolFailure("PROTOCOL_ERROR", f"the plugin has no tool {request.get('tool')!r}")
        from pathlib import Path

        from pasar_core.errors import PasarError
        from pasar_core.specs import OAuthCredentials, ToolContext

        context = request.get("context") or {}
        oauth = context.get("oauth")
        storage = Path(PLUGIN_STORAGE) / str(context.get("user_id", "user"))
        storage.mkdir(parents=True, exist_ok=True)
        ctx = ToolContext(
            user_id=str(context.get("user_id", "")),
            storage_root=storage,
            agent_id=context.get("agent_id"),
            execution_id=context.get("execution_id"),
            settings=dict(context.get("settings") or {}),
            secrets=dict(context.get("secrets") or {}),
            extras=self.plugin_services.extras if self.plugin_services is not None else {},
            oauth=OAuthCredentials(
                provider=str(oauth["provider"]),
                access_token=str(oauth["access_token"]),
                scopes=frozenset(oauth.get("scopes") or ()),
                api_base_url=oauth.get("api_base_url"),
            )
            if isinstance(oauth, dict)
            else None,
        )
        try:
            return self.run_on_loop(tool.run(ctx, request.get("args")))
        except OutputLimitExceeded:
            raise
        except PasarError as error:
            raise ToolFailure(
                "PLUGIN_TOOL_ERROR",
                str(error.message),
                {"code": str(error.code), **_plain(getattr(error, "details", {}))},
            ) from None
        except BaseException as error:  # SystemExit included: the runner keeps serving
            raise _raised(error, "") from None


def _family_manifest(family: Any) -> dict[str, Any]:
    return {
        "id": family.id,
        "title": family.title,
        "description": family.description,
        "version": str(family.version),
        "settings_schema": _plain(family.settings_schema),
        "secrets": list(family.secrets),
        "tools": [
            {
                "id": tool.id,
                "title": tool.title,
                "description": tool.description,
                "input_schema": _plain(tool.input_schema),
                "output_schema": _plain(tool.output_schema),
                "effect": str(getattr(tool.effect, "value", tool.effect)),
                "auth_provider": tool.auth_provider,
                "scopes": sorted(tool.scopes),
                "timeout_s": float(tool.timeout_s),
            }
            for tool in family.tools
        ],
    }


def _plain(value: Any) -> Any:
    """A plugin's mappings and tuples as plain JSON data."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [_plain(item) for item in value]
    return value


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _encode_result(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError) as error:  # UnicodeError is a ValueError
        raise ToolFailure(
            "TOOL_RESULT_INVALID", f"the tool's result is not JSON: {error}"[:MESSAGE_CHARS]
        ) from None


def _raised(error: BaseException, where: str) -> ToolFailure:
    """The tool's exception with only the tool's own frames (no runner or library paths)."""
    frames = [
        {"line": frame.lineno, "function": frame.name, "code": (frame.line or "")[:200],
         **({"file": frame.filename[len(PLUGIN_FILES):]}
            if frame.filename.startswith(PLUGIN_FILES) else {})}
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename == TOOL_FILENAME or frame.filename.startswith(PLUGIN_FILES)
    ][-20:]  # fmt: skip
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    message = f"{text} ({where})" if where else text
    return ToolFailure("TOOL_RAISED", message, {"type": type(error).__name__, "frames": frames})


def _error(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message[:MESSAGE_CHARS], "details": details or {}}


def _overflow(stream: str, caps: dict[str, int]) -> dict[str, Any]:
    limit = caps.get(f"{stream}_bytes", 0)
    return _error(
        "SANDBOX_OUTPUT_TOO_LARGE",
        f"the tool wrote more than {limit} bytes to {stream}",
        {"stream": stream, "limit": limit},
    )


def _nothing_left_running(expected: set[int]) -> bool:
    """True when only the init process, this runner (one thread) and the worker's egress relay
    (if any) are alive."""
    if threading.active_count() > 1 or len(os.listdir("/proc/self/task")) > 1:
        return False
    others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in expected]
    return not others


def main() -> None:
    # The protocol gets private descriptors; fds 0 and 1 point at /dev/null, so nothing the tool
    # (or a library, or a child process) writes to them can be taken for a reply.
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)

    def close_protocol() -> None:  # forks of the tool may not speak the protocol
        for stream in (requests, replies):
            with contextlib.suppress(OSError):
                os.close(stream.fileno())

    os.register_at_fork(after_in_child=close_protocol)
    sys.stdout = io.TextIOWrapper(io.BytesIO())  # stray prints outside a call go nowhere
    Runner(replies).serve(iter(requests.readline, b""))


if __name__ == "__main__":
    main()
