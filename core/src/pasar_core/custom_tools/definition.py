"""The registration body of a custom tool, and every check beyond its shape.

    {"id": "acme:invoice_total", "title": "...", "description": "...",
     "input_schema": {...}, "output_schema": {...}, "effect": "read", "timeout_s": 10,
     "limits": {"memory_mb": 256, "cpus": 0.5}, "network": {"allow_hosts": []},
     "implementation": {"kind": "python", "source": "def run(args): ...", "entrypoint": "run"}}

`implementation.kind` is `python` (source run in a sandbox container), `http` (one HTTP call
behind the SSRF guard, from the server itself) or `mcp` (one tool of an MCP server, over a
kept-alive session behind the same guard). `check_definition` applies what pydantic cannot:
schema rules (`custom_tools.schemas`), sandbox limits within the operator's maxima, a source that
parses and defines its entry function, and a URL template whose host is fixed.
"""

from __future__ import annotations

import ast
import re
import string
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from pasar_core.custom_tools.ids import BASE_ID_PATTERN
from pasar_core.custom_tools.schemas import check_user_schema
from pasar_core.errors import (
    ToolDefinitionInvalid,
    ToolEntrypointMissing,
    ToolError,
    ToolSourceInvalid,
)
from pasar_core.net.guard import MAX_ALLOW_HOSTS, AllowList, TargetRefused, parse_target
from pasar_core.sandbox.allow_hosts import check_egress_hosts
from pasar_core.sandbox.limits import SandboxLimits
from pasar_core.sandbox.settings import SandboxSettings
from pasar_core.specs import FAMILY_ID_PATTERN

MAX_SOURCE_CHARS = 256 * 1024
MAX_HEADERS = 20
MAX_TIMEOUT_S = 120.0
SECRET_PLACEHOLDER = re.compile(r"\{secrets\.([a-z][a-z0-9_]{0,63})\}")
ARG_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
HEADER_VALUE = re.compile(r"[\t\x20-\x7e]{0,8192}")
REFUSED_HEADERS = frozenset(
    {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
     "content-length", "expect", "host", "accept-encoding", "forwarded", "via",
     "proxy-authorization", "x-http-method-override", "x-http-method", "x-method-override",
     "metadata", "metadata-flavor", "x-google-metadata-request", "x-aws-ec2-metadata-token"}
)  # fmt: skip
REFUSED_HEADER_PREFIXES = ("proxy-", "x-forwarded-", "sec-")

Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]
EffectName = Literal["read", "write", "send", "destructive"]
HostEntry = Annotated[str, StringConstraints(min_length=1, max_length=262)]


class PythonImplementation(BaseModel):
    """Python source whose `entrypoint(args)` returns the result (run in a sandbox)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["python"]
    source: Annotated[str, StringConstraints(min_length=1, max_length=MAX_SOURCE_CHARS)]
    entrypoint: Identifier = "run"


class HttpImplementation(BaseModel):
    """One HTTP request: `{name}` in the URL's path and query takes an argument (URL-encoded);
    `{secrets.name}` in a header value takes the agent's secret `name`. Arguments not used in
    the URL go in the query (`body: "query"`, the default for GET and DELETE) or as a JSON
    object body (`"json"`, the default for POST, PUT and PATCH), or nowhere (`"none"`)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["http"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    headers: dict[Annotated[str, StringConstraints(max_length=100)], str] = Field(
        default_factory=dict, max_length=MAX_HEADERS
    )
    body: Literal["json", "query", "none"] | None = None

    def body_mode(self) -> str:
        if self.body is not None:
            return self.body
        return "json" if self.method in ("POST", "PUT", "PATCH") else "query"

    def secret_names(self) -> tuple[str, ...]:
        found = {
            name for value in self.headers.values() for name in SECRET_PLACEHOLDER.findall(value)
        }
        return tuple(sorted(found))

    def url_arguments(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ARG_PLACEHOLDER.findall(self.url)))


class McpImplementation(BaseModel):
    """One tool of an MCP server reached over streamable HTTP (behind the SSRF guard): `tool`
    is its name on the server; the arguments are sent as they are. `{secrets.name}` in a header
    value takes the agent's secret `name` (an Authorization for the server)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["mcp"]
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    tool: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    headers: dict[Annotated[str, StringConstraints(max_length=100)], str] = Field(
        default_factory=dict, max_length=MAX_HEADERS
    )

    def secret_names(self) -> tuple[str, ...]:
        found = {
            name for value in self.headers.values() for name in SECRET_PLACEHOLDER.findall(value)
        }
        return tuple(sorted(found))


class NetworkInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow_hosts: list[HostEntry] = Field(default_factory=list, max_length=MAX_ALLOW_HOSTS)


class ToolDefinition(BaseModel):
    """What a user registers (and replaces with `PUT /tools/{id}`, making a new version)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: Annotated[str, StringConstraints(pattern=BASE_ID_PATTERN)]
    title: Annotated[Text, StringConstraints(max_length=200)]
    description: Annotated[Text, StringConstraints(max_length=4000)]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] = Field(default_factory=dict)
    effect: EffectName = "read"
    timeout_s: float = Field(default=10.0, gt=0, le=MAX_TIMEOUT_S)
    limits: dict[str, Any] = Field(default_factory=dict, max_length=10)
    network: NetworkInput = Field(default_factory=NetworkInput)
    implementation: Annotated[
        PythonImplementation | HttpImplementation | McpImplementation,
        Field(discriminator="kind"),
    ]

    @property
    def kind(self) -> str:
        return self.implementation.kind


def _invalid(path: str, message: str) -> ToolDefinitionInvalid:
    return ToolDefinitionInvalid(
        f"{path}: {message}", details={"errors": [{"path": path, "message": message}]}
    )


def sandbox_limits(definition: ToolDefinition, settings: SandboxSettings) -> SandboxLimits:
    """The tool's sandbox limits within the operator's maxima (`ValidationFailed` otherwise)."""
    return SandboxLimits.from_tool(
        definition.limits, timeout_s=definition.timeout_s, maxima=settings.maxima
    )


def check_definition(
    definition: ToolDefinition,
    settings: SandboxSettings,
    allow_private_hosts: tuple[str, ...] = (),
) -> None:
    """Every rule of a custom tool beyond the body's shape; typed errors name the path.
    `allow_private_hosts` is the operator's bound on `network.allow_hosts`."""
    check_user_schema(definition.input_schema, "/input_schema")
    if definition.input_schema.get("type") != "object":
        raise _invalid("/input_schema/type", "the input schema must have type 'object'")
    check_user_schema(definition.output_schema, "/output_schema")
    implementation = definition.implementation
    bound = AllowList.parse(list(allow_private_hosts))
    try:
        if isinstance(implementation, PythonImplementation):
            check_egress_hosts(definition.network.allow_hosts, bound)
        else:
            AllowList.parse(definition.network.allow_hosts).within(bound)
    except ToolError as error:
        raise _invalid("/network/allow_hosts", error.message) from None
    if isinstance(implementation, PythonImplementation):
        sandbox_limits(definition, settings)
        check_source(implementation.source, implementation.entrypoint)
        return
    if definition.limits:
        raise _invalid("/limits", "HTTP and MCP tools run no sandbox: limits apply to python tools")
    if isinstance(implementation, HttpImplementation):
        check_http(implementation, definition.input_schema)
    else:
        check_mcp(implementation)


def check_mcp(implementation: McpImplementation) -> None:
    """A fixed http(s) URL the guard can parse (its addresses are checked at each connection)."""
    if "{" in implementation.url:
        raise _invalid("/implementation/url", "an MCP server's URL takes no placeholders")
    try:
        parse_target(implementation.url)
    except TargetRefused as error:
        raise _invalid("/implementation/url", error.reason) from None
    _check_headers(implementation.headers, implementation.secret_names())


def check_source(source: str, entrypoint: str) -> None:
    """The source parses as Python 3.11 and defines `entrypoint` at module level (by `def`,
    assignment or import). Parsing never runs the code."""
    try:
        tree = ast.parse(source, filename="<tool>", mode="exec")
    except SyntaxError as error:
        line = f"line {error.lineno}: " if error.lineno else ""
        raise ToolSourceInvalid(
            f"the tool's source does not parse: {line}{error.msg}",
            details={"line": error.lineno, "offset": error.offset},
        ) from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise ToolSourceInvalid(
            f"the tool's source does not parse: {type(error).__name__}"
        ) from None
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            defined.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    if entrypoint not in defined:
        raise ToolEntrypointMissing(
            f"the tool's source defines no {entrypoint!r} at module level",
            details={"entrypoint": entrypoint},
        )


def check_http(implementation: HttpImplementation, input_schema: dict[str, Any]) -> None:
    template = implementation.url
    try:
        fields = [field for _text, field, _spec, _conv in string.Formatter().parse(template)]
    except ValueError as error:
        raise _invalid("/implementation/url", f"not a valid URL template: {error}") from None
    names = [field for field in fields if field is not None]
    bad = [name for name in names if not ARG_PLACEHOLDER.fullmatch("{" + name + "}")]
    if bad:
        raise _invalid(
            "/implementation/url", f"placeholders must be argument names, not {bad[0]!r}"
        )
    authority = template.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    if "{" in template.split("://", 1)[0] or "{" in authority:
        raise _invalid("/implementation/url", "the scheme and host must not contain placeholders")
    try:
        parse_target(ARG_PLACEHOLDER.sub("x", template))
    except TargetRefused as error:
        raise _invalid("/implementation/url", error.reason) from None
    properties = input_schema.get("properties")
    known = set(properties) if isinstance(properties, dict) else set()
    missing = [name for name in implementation.url_arguments() if name not in known]
    if missing:
        raise _invalid(
            "/implementation/url",
            f"the URL uses {missing[0]!r}, which input_schema.properties does not define",
        )
    _check_headers(implementation.headers, implementation.secret_names())


def _check_headers(headers: dict[str, str], secrets: tuple[str, ...]) -> None:
    for name, value in headers.items():
        key = name.lower()
        path = f"/implementation/headers/{name}"
        if not HEADER_NAME.fullmatch(name):
            raise _invalid(path, "not a valid HTTP header name")
        if key in REFUSED_HEADERS or key.startswith(REFUSED_HEADER_PREFIXES):
            raise _invalid(path, "this header is managed by the client and may not be set")
        if not HEADER_VALUE.fullmatch(SECRET_PLACEHOLDER.sub("x", value)):
            raise _invalid(path, "header values must be printable ASCII")
        leftover = SECRET_PLACEHOLDER.sub("", value)
        if "{secrets." in leftover:
            raise _invalid(path, "secret placeholders look like {secrets.name} (lowercase)")
    for secret in secrets:
        if not FAMILY_ID_PATTERN.match(secret):
            raise _invalid("/implementation/headers", f"bad secret name {secret!r}")
