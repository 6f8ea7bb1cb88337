"""Transport streams for an operator's MCP server: streamable HTTP or a stdio subprocess."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import TextIO, cast

import httpx2
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from pasar_core.mcp.config import McpServerConfig
from pasar_core.mcp.connection import OpenTransport, Streams

# Connect, write and pool bounded like the SDK's default client; reads may wait as long as a
# tool call may take (an SSE answer arrives when the tool is done).
HTTP_TIMEOUT_S = 30.0


def transport_for(config: McpServerConfig) -> OpenTransport:
    if config.url is not None:
        url, headers = config.url, dict(config.headers)
        read_s = max(config.timeout_s, HTTP_TIMEOUT_S) + 5

        @contextlib.asynccontextmanager
        async def http() -> AsyncIterator[Streams]:
            timeout = httpx2.Timeout(HTTP_TIMEOUT_S, read=read_s)
            async with (
                httpx2.AsyncClient(headers=headers, timeout=timeout, trust_env=False) as client,
                streamable_http_client(url, http_client=client) as streams,
            ):
                yield streams

        return http
    assert config.command is not None
    params = StdioServerParameters(
        command=config.command, args=list(config.args), env=dict(config.env), cwd=config.cwd
    )

    @contextlib.asynccontextmanager
    async def stdio() -> AsyncIterator[Streams]:
        async with stdio_client(params, errlog=server_errlog()) as streams:
            yield streams

    return stdio


def server_errlog() -> TextIO:
    """Where a stdio server's stderr goes: this process's, when it is a real file (a captured
    stream, as under a test runner, has none: then nowhere)."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return cast("TextIO", subprocess.DEVNULL)  # anyio's open_process takes it
    return sys.stderr
