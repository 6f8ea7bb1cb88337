"""The per-request context: the services container and the caller, authenticated lazily."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field

import strawberry
from pasar_core.accounts.credentials import credential_from_headers
from pasar_core.accounts.principal import Principal
from pasar_core.accounts.service import authenticate
from pasar_core.accounts.sources import client_source
from pasar_core.errors import Unauthenticated
from pasar_core.executions.runtime import Runs
from pasar_core.services import Services
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from pasar_graphql.tools.catalogue import ToolCatalogue


@dataclass
class Context:
    """Built once per request. Holds a sessionmaker (via `services`), never a shared session:
    Strawberry resolves sibling fields concurrently."""

    request: Request | WebSocket
    response: Response | WebSocket
    services: Services
    runs: Runs | None = None
    """The process's execution runtime (None in an app run without one)."""
    connection_params: dict[str, object] | None = None
    """Set by Strawberry from a websocket's `connection_init` payload (browsers cannot send
    headers there): `{"Authorization": "Bearer ..."}` or `{"X-API-Key": "..."}`."""
    batch: bool = False
    """The request is a batch of operations (each is rate-limited on its own; no HTTP 429 for
    the whole batch when one operation is refused)."""
    catalogue: ToolCatalogue = field(default_factory=ToolCatalogue)
    """The catalogue's GraphQL objects: the app's, shared by its requests."""
    _principal: Principal | None = field(default=None, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    def execution_runs(self) -> Runs:
        if self.runs is None:
            raise RuntimeError(
                "no execution runtime in the app state: run the app with its lifespan"
            )
        return self.runs

    @property
    def authenticated(self) -> Principal | None:
        """The caller, if this request authenticated one (never authenticates by itself)."""
        return self._principal

    async def principal(self) -> Principal:
        """The authenticated caller, resolved on first use and cached for the request."""
        async with self._lock:  # concurrent resolvers authenticate once
            if self._principal is None:
                headers = {
                    key.lower(): str(value) for key, value in (self.connection_params or {}).items()
                }
                credential = credential_from_headers(headers or self.request.headers)
                if credential is None:
                    raise Unauthenticated(
                        "authentication required: send 'Authorization: Bearer <token or API key>'"
                    )
                self._principal = await authenticate(self.services, credential)
            return self._principal

    async def optional_principal(self) -> Principal | None:
        """The caller when credentials were sent (bad ones are refused), else None."""
        headers = {key.lower(): str(value) for key, value in (self.connection_params or {}).items()}
        if credential_from_headers(headers or self.request.headers) is None:
            return None
        return await self.principal()

    async def located_principal(self) -> Principal | None:
        """`optional_principal` with the client's address, which audit rows and rate limits
        need: resolved for operations that write (reads skip the cost of the address)."""
        principal = await self.optional_principal()
        if principal is not None and principal.source is None:
            principal = dataclasses.replace(principal, source=self.source())
            self._principal = principal
        return principal

    def source(self) -> str:
        """The client's address for rate limits: the connection's peer (or the client named
        by `X-Forwarded-For` when the peer is one of `PASAR_TRUSTED_PROXIES`)."""
        client = self.request.client
        return client_source(
            client.host if client else None,
            self.request.headers.getlist("x-forwarded-for"),
            self.services.settings.trusted_proxies,
        )


Info = strawberry.Info[Context, None]
