"""Where a request comes from, for rate limits: the connection's peer address.

`X-Forwarded-For` is believed only from proxies the operator lists (`PASAR_TRUSTED_PROXIES`):
walking the header from the right, the first address that is not a trusted proxy is the client.
Anyone can send the header, so without that setting it is ignored. An IPv6 client counts as its
/64 (one host usually holds a whole /64); an IPv4-mapped IPv6 address counts as the IPv4 one.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from pasar_core.errors import StartupError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "unknown"


@functools.lru_cache(maxsize=8)
def parse_trusted_proxies(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """`PASAR_TRUSTED_PROXIES` entries (addresses or CIDR blocks) as networks."""
    networks: list[Network] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            raise StartupError(
                f"PASAR_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR block"
            ) from None
    return tuple(networks)


def _address(value: str) -> Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[v6]:port"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "v4:port"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: Iterable[Network]) -> bool:
    return any(address in network for network in networks)


def source_key(address: Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def client_source(
    peer: str | None, forwarded_for: Iterable[str] = (), trusted_proxies: tuple[str, ...] = ()
) -> str:
    """The rate-limit key of a request from `peer` (the connection's address) with these
    `X-Forwarded-For` header values."""
    address = _address(peer) if peer else None
    if address is None:
        return f"peer:{peer}" if peer else UNKNOWN
    networks = parse_trusted_proxies(trusted_proxies)
    if not networks or not _trusted(address, networks):
        return source_key(address)
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        hop_address = _address(hop)
        if hop_address is None:
            break  # garbage from before the trusted chain: keep the last trusted hop
        address = hop_address
        if not _trusted(address, networks):
            break
    return source_key(address)
