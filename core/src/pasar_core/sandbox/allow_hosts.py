"""What a sandboxed workload may list in `allow_hosts`, and which entries the operator opens.

A python custom tool's `network.allow_hosts`, or the hosts an operator approves for a sandboxed
plugin at install, are the only targets its egress proxy (`pasar_core.sandbox.egress`) lets it
reach. The API process checks them here when they are registered and, at each call, works out
which of them the operator's bound (`PASAR_ALLOW_PRIVATE_HOSTS`, as it is now) opens to loopback
and private addresses; the worker's proxy applies both.
"""

from __future__ import annotations

from collections.abc import Sequence

from pasar_core.errors import ToolError
from pasar_core.net.guard import AllowList, TargetRefused, check_target, parse_target


def check_egress_hosts(allow_hosts: Sequence[str], bound: AllowList) -> None:
    """Each entry must be well-formed, and either opened by the operator or a host the guard
    would let anyone reach (a public name or address, on 80, 443 or an unprivileged port); names
    that resolve to private addresses are refused at call time, by the guard. `ToolError` says
    which entry and why."""
    for entry in AllowList.parse(list(allow_hosts)).entries:
        host, port = entry
        if entry in bound.entries or (host, None) in bound.entries:
            continue
        literal = f"[{host}]" if ":" in host else host
        try:
            check_target(parse_target(f"http://{literal}:{port or 443}/"), AllowList())
        except TargetRefused as refused:
            shown = f"{literal}:{port}" if port else literal
            raise ToolError(
                f"{shown}: {refused.reason} (the operator opens such hosts with "
                "PASAR_ALLOW_PRIVATE_HOSTS)"
            ) from None


def opened_hosts(allow_hosts: Sequence[str], bound: object) -> tuple[str, ...]:
    """The entries of `allow_hosts` that the operator's bound opens: only those may reach
    loopback or private addresses. `bound` is `ctx.extras["net.allow_bound"]` (absent: none)."""
    operator = AllowList.parse(list(bound) if isinstance(bound, list | tuple) else [])
    opened = []
    for entry in allow_hosts:
        try:
            AllowList.parse([entry]).within(operator)
        except ToolError:
            continue
        opened.append(entry)
    return tuple(opened)
