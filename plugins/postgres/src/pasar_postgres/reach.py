"""Where a call may connect: the SSRF guard's decision for the DSN's host, made before connecting.

A TCP host goes through `pasar_core.net.guard.guard_host`, the web tools' guard: resolved once,
every address checked, and only public addresses pass unless the operator lists the host in
`PASAR_ALLOW_PRIVATE_HOSTS` (`ctx.extras["net.allow_bound"]`; cloud metadata and link-local stay
refused for everyone). The driver is then given the checked IP addresses, never the name, so a
resolver that answers differently the second time (DNS rebinding) cannot move the connection.
A unix-socket directory must be one the operator lists in `PASAR_ALLOW_UNIX_SOCKETS`.

The owner of an agent sets both its DSN and its settings, so an agent-level allow-list would add
nothing: the operator's list is the only one that decides.
"""

from __future__ import annotations

import os.path
from dataclasses import dataclass

from pasar_core.errors import ToolError
from pasar_core.net.guard import ALLOW_BOUND_EXTRA, ALLOW_SOCKETS_EXTRA, AllowList, guard_host
from pasar_core.net.resolver import resolver_for
from pasar_core.specs import ToolContext

from pasar_postgres.dsn import ConnectArgs


class Refused(Exception):
    """The guard refused the host; `reason` is for the server's log only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Route:
    """What the driver may dial for one call."""

    addresses: tuple[str, ...]
    """Checked IP literals (in the resolver's order), or the one allowed socket directory."""
    port: int
    server_name: str | None
    """The DSN's host name, for TLS (SNI and certificate checks); None for IP literals."""
    is_socket: bool = False


def _operator_list(ctx: ToolContext, key: str) -> list[str]:
    value = ctx.extras.get(key) or ()
    if isinstance(value, str) or not all(isinstance(item, str) for item in value):
        raise TypeError(f"ctx.extras[{key!r}] must be a sequence of strings")
    return list(value)


def _socket_route(ctx: ToolContext, args: ConnectArgs) -> Route:
    allowed = {os.path.normpath(path) for path in _operator_list(ctx, ALLOW_SOCKETS_EXTRA)}
    if os.path.normpath(args.host) not in allowed:
        raise Refused(f"unix-socket directory {args.host!r} is not in PASAR_ALLOW_UNIX_SOCKETS")
    return Route(addresses=(args.host,), port=args.port, server_name=None, is_socket=True)


async def route_for(ctx: ToolContext, args: ConnectArgs) -> Route:
    """The addresses this call may use, or `Refused` (nothing has been sent anywhere yet)."""
    if args.is_socket:
        return _socket_route(ctx, args)
    allow = AllowList.parse(_operator_list(ctx, ALLOW_BOUND_EXTRA))
    try:
        pinned = await guard_host(args.host, args.port, allow, resolver_for(ctx))
    except ToolError as error:  # TargetRefused, or the name did not resolve
        raise Refused(error.message) from None
    target = pinned.target
    return Route(
        addresses=tuple(str(address) for address in pinned.addresses),
        port=target.port,
        server_name=target.host if target.ip is None else None,
    )
