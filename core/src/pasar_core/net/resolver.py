"""Name resolution for the web tools: one injectable component, the system resolver by default.

The guard resolves a host exactly once per hop through a `Resolver`, checks every address, and the
connection is pinned to the checked addresses; nothing downstream resolves the name again. A
deployment (or a test) may pass another resolver as `ToolContext.extras["web.resolver"]`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pasar_core.specs import ToolContext

RESOLVER_EXTRA = "web.resolver"


@runtime_checkable
class Resolver(Protocol):
    """Turns a host name into the IP addresses (as text) a TCP connection to it may use."""

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        """All A/AAAA answers for `host`; raise `OSError` when the name does not resolve."""
        ...


class SystemResolver:
    """The operating system's resolver (`getaddrinfo`, so /etc/hosts and nsswitch apply)."""

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        addresses: list[str] = []
        for _family, _type, _proto, _canonname, sockaddr in infos:
            address = str(sockaddr[0])
            if address not in addresses:
                addresses.append(address)
        return addresses


SYSTEM_RESOLVER = SystemResolver()


def resolver_for(ctx: ToolContext) -> Resolver:
    """The resolver a deployment put in `ctx.extras`, else the system resolver."""
    resolver = ctx.extras.get(RESOLVER_EXTRA)
    if resolver is None:
        return SYSTEM_RESOLVER
    if not isinstance(resolver, Resolver):
        raise TypeError(f"ctx.extras[{RESOLVER_EXTRA!r}] is not a Resolver (needs async resolve)")
    return resolver
