"""The `/mcp` route's app, whose MCP server (`pasar.mcp_server`, with the SDK: about a second
of imports) is loaded in a thread while the rest of the app starts, not when pasar is imported."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import Receive, Scope, Send


class McpMount:
    def __init__(self) -> None:
        self._loading: asyncio.Task[Any] | None = None
        self._endpoint: Any = None

    def start_loading(self) -> None:
        if self._loading is None:
            self._loading = asyncio.create_task(
                asyncio.to_thread(importlib.import_module, "pasar.mcp_server"),
                name="pasar-load-mcp-server",
            )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The MCP server's session manager, for as long as the app serves."""
        self.start_loading()
        assert self._loading is not None
        module = await self._loading
        endpoint = module.McpEndpoint()
        async with endpoint.running():
            self._endpoint = endpoint
            try:
                yield
            finally:
                self._endpoint = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._endpoint is None:  # outside the lifespan: nothing to serve with
            from starlette.responses import JSONResponse

            body = {"error": {"code": "UNAVAILABLE", "message": "the MCP server is not running"}}
            await JSONResponse(body, status_code=503)(scope, receive, send)
            return
        await self._endpoint(scope, receive, send)
