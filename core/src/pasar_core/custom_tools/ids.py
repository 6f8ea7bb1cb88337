"""Custom tool ids: `namespace:name`, pinned as `namespace:name@version`.

A namespace belongs to the first user who registers a tool in it (`tool_namespaces`), so ids
are unique across users; namespaces that installed plugins' tools or sandboxed plugins use are
never handed out. The same `service:action` shape as plugin tools keeps ids and the names models
see (`acme_invoice_total`, `acme_invoice_total_v3`) alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pasar_core.errors import ToolDefinitionInvalid

MAX_NAMESPACE_CHARS = 24
MAX_NAME_CHARS = 32
TOOL_REF = re.compile(
    rf"(?P<namespace>[a-z][a-z0-9_]{{0,{MAX_NAMESPACE_CHARS - 1}}})"
    rf":(?P<name>[a-z][a-z0-9_]{{0,{MAX_NAME_CHARS - 1}}})"
    r"(?:@(?P<version>[1-9][0-9]{0,5}))?"
)
BASE_ID_PATTERN = (
    rf"^[a-z][a-z0-9_]{{0,{MAX_NAMESPACE_CHARS - 1}}}:[a-z][a-z0-9_]{{0,{MAX_NAME_CHARS - 1}}}$"
)
RESERVED_NAMESPACES = frozenset({"pasar", "custom", "sandbox", "plugin", "system", "admin", "mcp"})
RESERVED_PREFIXES = ("mcp_",)
"""`mcp_<name>` are the families of the operator's MCP servers (`PASAR_MCP_SERVERS`)."""


@dataclass(frozen=True, slots=True)
class ToolRef:
    """A custom tool id as an agent names it: the latest version, or a pinned one."""

    namespace: str
    name: str
    version: int | None = None

    @property
    def base(self) -> str:
        return f"{self.namespace}:{self.name}"

    def __str__(self) -> str:
        return self.base if self.version is None else f"{self.base}@{self.version}"


def parse_ref(value: str) -> ToolRef | None:
    """The id as a custom tool reference, or None when it cannot be one."""
    match = TOOL_REF.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    version = match["version"]
    return ToolRef(match["namespace"], match["name"], int(version) if version else None)


def parse_base_id(value: str) -> ToolRef:
    """A registration's `id`: `namespace:name`, no version (versions are the server's)."""
    ref = parse_ref(value)
    if ref is None or ref.version is not None:
        raise ToolDefinitionInvalid(
            f"invalid tool id {value[:100]!r}: expected namespace:name (lowercase letters, "
            f"digits and _, starting with a letter; at most {MAX_NAMESPACE_CHARS} and "
            f"{MAX_NAME_CHARS} characters), without @version",
            details={"errors": [{"path": "/id", "message": "expected namespace:name"}]},
        )
    if ref.namespace in RESERVED_NAMESPACES or ref.namespace.startswith(RESERVED_PREFIXES):
        raise ToolDefinitionInvalid(
            f"the namespace {ref.namespace!r} is reserved",
            details={"errors": [{"path": "/id", "message": "reserved namespace"}]},
        )
    return ref
