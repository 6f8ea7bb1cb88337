"""The MCP servers an operator configures (`PASAR_MCP_SERVERS`): a streamable HTTP URL or a
stdio command each, trusted as the operator's own."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from pasar_core.errors import StartupError

SERVER_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,40}$"


class _ServerEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    command: Annotated[str, StringConstraints(min_length=1)] | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30.0


@dataclass(frozen=True, slots=True)
class McpServerConfig:
    """One MCP server: `url` (streamable HTTP, with `headers` such as an Authorization) or
    `command` with `args`, `env` and `cwd` (stdio). `timeout_s` bounds each tool call."""

    name: str
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    cwd: str | None = None
    timeout_s: float = 30.0

    @property
    def family_id(self) -> str:
        return f"mcp_{self.name}"

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"


def parse_mcp_servers(raw: str | None) -> tuple[McpServerConfig, ...]:
    """`{"name": {"url": ...} | {"command": ..., "args": [...]}, ...}`; refused at start-up
    with the first problem named."""
    if raw is None or not raw.strip():
        return ()
    try:
        document: Any = json.loads(raw)
    except ValueError as error:
        raise StartupError(f"PASAR_MCP_SERVERS is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise StartupError("PASAR_MCP_SERVERS must be a JSON object of servers by name")
    servers = []
    for name, value in document.items():
        if not re.fullmatch(SERVER_NAME_PATTERN, name):
            raise StartupError(
                f"PASAR_MCP_SERVERS: server name {name!r} must be lowercase letters, digits "
                "and _, starting with a letter"
            )
        try:
            entry = _ServerEntry.model_validate(value)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "entry"
            raise StartupError(f"PASAR_MCP_SERVERS[{name!r}].{where}: {first['msg']}") from None
        if (entry.url is None) == (entry.command is None):
            raise StartupError(f"PASAR_MCP_SERVERS[{name!r}]: give either url or command")
        servers.append(
            McpServerConfig(
                name=name,
                url=entry.url,
                headers=dict(entry.headers),
                command=entry.command,
                args=tuple(entry.args),
                env=dict(entry.env),
                cwd=entry.cwd,
                timeout_s=entry.timeout_s,
            )
        )
    return tuple(servers)
