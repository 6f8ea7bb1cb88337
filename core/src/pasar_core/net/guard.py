"""The SSRF guard: which URLs, hosts and addresses the web tools may reach, decided before connecting.

`decide(url, allow, addresses)` is pure: it parses the URL strictly (with httpx's parser, the same
one that sends the request, so there is no parser differential), normalises the host (IDNA,
trailing dot, and decimal/octal/hex/short IPv4 forms such as `2130706433`, `0x7f.1`, `127.1`),
applies the port and name rules, and checks every address the host resolves to. `guard(...)` does
the same with one resolution through an injectable `Resolver`, and `guard_host(host, port, ...)` does
it for clients that are not HTTP (the postgres tools). Each returns a `Pinned` target whose
addresses are the only ones the connection may use, or raises `TargetRefused`.

Only public unicast addresses pass. Hosts in the agent's `allow_hosts` setting may also resolve to
loopback, private (RFC 1918), carrier-grade NAT and IPv6 unique-local addresses; cloud metadata,
link-local, multicast, broadcast, unspecified, reserved and the rest stay refused for everyone.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from pasar_core.errors import ToolError
from pasar_core.net.resolver import Resolver

MAX_URL_CHARS = 8 * 1024
MAX_ALLOW_HOSTS = 100
ALLOW_BOUND_EXTRA = "net.allow_bound"
"""`ctx.extras` key of the operator's bound on agents' allow-lists (absent: no bound)."""
ALLOW_SOCKETS_EXTRA = "net.allow_unix_sockets"
"""`ctx.extras` key of the unix-socket directories the operator lets tools open (absent: none)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
LOWEST_OPEN_PORT = 1024
"""Without an allow-list entry naming the port, only 80, 443 and unprivileged ports may be used."""

METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
"""Cloud metadata host names: refused even when allow-listed."""

LOCAL_SUFFIXES = ("localhost", "local", "internal", "localdomain", "home.arpa", "lan")
"""Names that only mean something inside a network: refused unless allow-listed, before any lookup."""

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# (network, what it is, whether an allow-listed host may resolve to it); first match wins.
_V4_RULES: tuple[tuple[ipaddress.IPv4Network, str, bool], ...] = (
    (_V4("169.254.169.254/32"), "the cloud metadata address", False),
    (_V4("169.254.170.2/32"), "a cloud (ECS) metadata address", False),
    (_V4("100.100.100.200/32"), "a cloud (Alibaba) metadata address", False),
    (_V4("192.0.0.192/32"), "a cloud (Oracle) metadata address", False),
    (_V4("0.0.0.0/8"), "an unspecified ('this network') address", False),
    (_V4("127.0.0.0/8"), "a loopback address", True),
    (_V4("10.0.0.0/8"), "a private (RFC 1918) address", True),
    (_V4("172.16.0.0/12"), "a private (RFC 1918) address", True),
    (_V4("192.168.0.0/16"), "a private (RFC 1918) address", True),
    (_V4("100.64.0.0/10"), "a carrier-grade NAT (RFC 6598) address", True),
    (_V4("169.254.0.0/16"), "a link-local address", False),
    (_V4("192.0.0.0/24"), "an IETF protocol assignment address", False),
    (_V4("192.0.2.0/24"), "a documentation address", False),
    (_V4("198.51.100.0/24"), "a documentation address", False),
    (_V4("203.0.113.0/24"), "a documentation address", False),
    (_V4("192.88.99.0/24"), "a 6to4 relay anycast address", False),
    (_V4("198.18.0.0/15"), "a benchmarking address", False),
    (_V4("224.0.0.0/4"), "a multicast address", False),
    (_V4("255.255.255.255/32"), "the broadcast address", False),
    (_V4("240.0.0.0/4"), "a reserved address", False),
)
_V6_RULES: tuple[tuple[ipaddress.IPv6Network, str, bool], ...] = (
    (_V6("fd00:ec2::254/128"), "the cloud (AWS) metadata address", False),
    (_V6("::/128"), "the unspecified address", False),
    (_V6("::1/128"), "a loopback address", True),
    (_V6("::/96"), "an IPv4-compatible address (deprecated)", False),
    (_V6("::ffff:0:0:0/96"), "an IPv4-translated address", False),
    (_V6("64:ff9b:1::/48"), "a local-use NAT64 address", False),
    (_V6("100::/64"), "a discard-only address", False),
    (_V6("2001::/32"), "a Teredo address", False),
    (_V6("2001:2::/48"), "a benchmarking address", False),
    (_V6("2001:db8::/32"), "a documentation address", False),
    (_V6("3fff::/20"), "a documentation address", False),
    (_V6("fc00::/7"), "a unique-local address", True),
    (_V6("fe80::/10"), "a link-local address", False),
    (_V6("fec0::/10"), "a site-local address (deprecated)", False),
    (_V6("ff00::/8"), "a multicast address", False),
)
_NAT64 = _V6("64:ff9b::/96")
_SIXTOFOUR = _V6("2002::/16")

_DECIMAL = re.compile(r"[0-9]+")
_OCTAL = re.compile(r"0[0-7]+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]*")
_OCTAL_LOOKING = re.compile(r"0[0-9]+")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_HOST_CHARS = re.compile(r"[A-Za-z0-9._-]+|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")
_ALLOW_ENTRY = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]+)(?::(?P<port>[0-9]{1,5}))?")


class TargetRefused(ToolError):
    """The guard refused a URL, host or address; `reason` says which rule, for the model to read."""

    code = "WEB_TARGET_REFUSED"

    def __init__(self, url: str, reason: str) -> None:
        shown = url if len(url) <= 200 else url[:200] + "..."
        super().__init__(
            f"refused to connect to {shown}: {reason}", details={"url": shown, "reason": reason}
        )
        self.url = shown
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed, normalised URL: what is requested and where."""

    url: httpx.URL
    host: str
    """Lowercase ASCII name without a trailing dot, or the canonical text of an IP literal."""
    port: int
    ip: IPAddress | None = None
    """Set when the host is an IP literal (in any IPv4 spelling, or IPv6)."""

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.url.scheme, self.host, self.port)


@dataclass(frozen=True, slots=True)
class Pinned:
    """A target the guard accepted, with the only addresses its connection may use."""

    target: Target
    addresses: tuple[IPAddress, ...]
    allow_listed: bool


@dataclass(frozen=True, slots=True)
class AllowList:
    """Hosts (any open port) and host:port pairs (that port only) from the agent's settings."""

    entries: frozenset[tuple[str, int | None]] = frozenset()

    @classmethod
    def parse(cls, values: object) -> AllowList:
        """Parse `allow_hosts`; a malformed entry is an error, never silently ignored."""
        if values is None:
            return cls()
        if not isinstance(values, list | tuple) or len(values) > MAX_ALLOW_HOSTS:
            raise ToolError(f"allow_hosts must be a list of at most {MAX_ALLOW_HOSTS} strings")
        entries: set[tuple[str, int | None]] = set()
        for value in values:
            match = _ALLOW_ENTRY.fullmatch(value) if isinstance(value, str) else None
            port = int(match["port"]) if match and match["port"] else None
            try:
                if match is None or (port is not None and not 1 <= port <= 65535):
                    raise ValueError("expected host or host:port")
                host, _ip = _normalise_host(
                    httpx.URL(f"http://{match['host']}/").raw_host.decode("ascii")
                )
            except (ValueError, httpx.InvalidURL, UnicodeDecodeError) as error:
                raise ToolError(f"allow_hosts entry {value!r} is not valid: {error}") from None
            entries.add((host, port))
        return cls(frozenset(entries))

    @classmethod
    def from_settings(cls, settings: object) -> AllowList:
        allow = settings.get("allow_hosts") if isinstance(settings, Mapping) else None
        return cls.parse(allow)

    def within(self, bound: AllowList) -> AllowList:
        """Refuse entries the operator's `bound` does not open (a host entry of the bound opens
        every port of that host)."""
        outside = sorted(
            f"{host}:{port}" if port else host
            for host, port in self.entries
            if (host, port) not in bound.entries and (host, None) not in bound.entries
        )
        if outside:
            raise ToolError(
                "this server does not let agents open these hosts (its operator sets "
                f"PASAR_ALLOW_PRIVATE_HOSTS): {', '.join(outside)}",
                details={"refused": outside},
            )
        return self

    def lists_host(self, target: Target) -> bool:
        return (target.host, None) in self.entries or (target.host, target.port) in self.entries

    def lists_port(self, target: Target) -> bool:
        return (target.host, target.port) in self.entries


def _ipv4_number(label: str) -> int:
    if _HEX.fullmatch(label):
        return int(label[2:] or "0", 16)
    if _OCTAL.fullmatch(label):
        return int(label[1:], 8)
    if _OCTAL_LOOKING.fullmatch(label):
        raise ValueError(f"{label!r} is neither octal nor decimal")
    if _DECIMAL.fullmatch(label):
        return int(label)
    raise ValueError(f"{label!r} is not a number")


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Read a host the way `inet_aton` and browsers do (decimal, octal, hex; 1-4 parts).

    None when the host does not end in a number (a DNS name); `ValueError` when it does but is
    no valid IPv4 address, which the guard refuses rather than handing to a resolver.
    """
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    if not (_DECIMAL.fullmatch(labels[-1]) or _HEX.fullmatch(labels[-1])):
        return None
    if len(labels) > 4:
        raise ValueError("more than four parts")
    numbers = [_ipv4_number(label) for label in labels]
    *head, last = numbers
    if any(number > 255 for number in head) or last >= 256 ** (5 - len(numbers)):
        raise ValueError("a part is out of range")
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _normalise_host(raw_host: str) -> tuple[str, IPAddress | None]:
    """Canonical host text and, for IP literals, the address; `ValueError` if unusable."""
    host = raw_host.lower()
    if not host:
        raise ValueError("the URL has no host")
    if ":" in host:
        ip6 = ipaddress.IPv6Address(host)
        if ip6.scope_id:
            raise ValueError("scoped IPv6 addresses are not allowed")
        return str(ip6), ip6
    if host.endswith("."):
        host = host[:-1]
    ip4 = parse_ipv4(host)
    if ip4 is not None:
        return str(ip4), ip4
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{raw_host!r} is not a valid DNS name")
    return host, None


def _embedded_problem(ip: ipaddress.IPv4Address, what: str) -> str | None:
    reason, _relaxed = classify(ip)
    return None if reason is None else f"{what} embedding {reason}"


def classify(ip: IPAddress) -> tuple[str | None, bool]:
    """(why the address is refused, or None; whether an allow-listed host may use it anyway)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "a scoped IPv6 address", False
        if ip.ipv4_mapped is not None:
            return classify(ip.ipv4_mapped)
        if ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            return _embedded_problem(embedded, "a NAT64 address"), False
        if ip.sixtofour is not None:
            return _embedded_problem(ip.sixtofour, "a 6to4 address"), False
        for network6, reason, relaxed in _V6_RULES:
            if ip in network6:
                return reason, relaxed
    else:
        for network4, reason, relaxed in _V4_RULES:
            if ip in network4:
                return reason, relaxed
    if ip.is_reserved or ip.is_private or not ip.is_global:  # ipaddress's own tables, as a net
        return "an address that is not globally routable", False
    return None, False


def address_problem(ip: IPAddress, *, allow_listed: bool) -> str | None:
    """Why a connection to `ip` is refused, or None when it may go ahead."""
    reason, relaxed = classify(ip)
    if reason is None or (relaxed and allow_listed):
        return None
    return reason


def connectable(ip: IPAddress) -> IPAddress:
    """The address to dial: IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes plain IPv4."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_target(raw: object) -> Target:
    """Parse and normalise a URL, or refuse it. Never raises anything but `TargetRefused`."""
    if not isinstance(raw, str | httpx.URL):
        raise TargetRefused(repr(raw)[:200], "the URL must be a string")
    text = str(raw)
    if len(text) > MAX_URL_CHARS:
        raise TargetRefused(text, f"the URL is longer than {MAX_URL_CHARS} characters")
    try:
        url = raw if isinstance(raw, httpx.URL) else httpx.URL(raw)
    except (httpx.InvalidURL, ValueError, TypeError) as error:
        raise TargetRefused(text, f"not a valid URL ({error})") from None
    if url.scheme not in SCHEMES:
        raise TargetRefused(text, "only http and https URLs may be fetched")
    if url.userinfo:
        raise TargetRefused(
            text, "URLs with a user name or password are refused; send credentials as headers"
        )
    if url.port is not None and not 1 <= url.port <= 65535:
        raise TargetRefused(text, f"port {url.port} is out of range")
    try:
        host, ip = _normalise_host(url.raw_host.decode("ascii"))
    except (ValueError, UnicodeDecodeError) as error:
        raise TargetRefused(text, f"the host is not valid ({error})") from None
    try:
        url = url.copy_with(fragment=None)
        if ip is None or isinstance(ip, ipaddress.IPv4Address):
            url = url.copy_with(host=host)  # the canonical spelling is what is sent as Host
    except (httpx.InvalidURL, ValueError, TypeError) as error:
        raise TargetRefused(text, f"not a valid URL ({error})") from None
    port = url.port or DEFAULT_PORTS[url.scheme]
    return Target(url=url, host=host, port=port, ip=ip)


def check_target(target: Target, allow: AllowList) -> bool:
    """The rules that need no resolution; returns whether the host is allow-listed."""
    shown = str(target.url)
    listed = allow.lists_host(target)
    if target.host in METADATA_NAMES:
        raise TargetRefused(shown, "cloud metadata hosts are never reachable")
    port = target.port
    if not allow.lists_port(target) and not (
        port in (80, 443) or LOWEST_OPEN_PORT <= port <= 65535
    ):
        raise TargetRefused(
            shown,
            f"port {port} is refused: only 80, 443 and ports from {LOWEST_OPEN_PORT} up, "
            "unless allow_hosts names this host:port",
        )
    if target.ip is not None:
        problem = address_problem(target.ip, allow_listed=listed)
        if problem:
            raise TargetRefused(shown, f"{target.host} is {problem}{_hint(listed)}")
    elif not listed:
        if "." not in target.host:
            raise TargetRefused(shown, f"{target.host!r} is a single-label (intranet) name")
        if target.host.endswith(tuple("." + suffix for suffix in LOCAL_SUFFIXES)):
            raise TargetRefused(shown, f"{target.host!r} is a local-network name")
    return listed


def check_addresses(
    target: Target, addresses: Iterable[str | IPAddress], *, allow_listed: bool
) -> tuple[IPAddress, ...]:
    """Every resolved address must pass; one bad answer refuses the host (no picking)."""
    shown = str(target.url)
    if target.ip is not None:
        return (connectable(target.ip),)
    pinned: list[IPAddress] = []
    for value in addresses:
        try:
            ip = value if not isinstance(value, str) else ipaddress.ip_address(value)
        except ValueError:
            raise TargetRefused(
                shown, "the resolver returned something that is not an IP"
            ) from None
        problem = address_problem(ip, allow_listed=allow_listed)
        if problem:
            raise TargetRefused(shown, f"{target.host} resolves to {problem}{_hint(allow_listed)}")
        if connectable(ip) not in pinned:
            pinned.append(connectable(ip))
    if not pinned:
        raise ToolError(f"could not resolve {target.host}: no addresses")
    return tuple(pinned)


def _hint(listed: bool) -> str:
    if listed:
        return " (never reachable, not even for allow-listed hosts)"
    return (
        "; only public addresses, or hosts in this agent's web allow_hosts setting, are reachable"
    )


def decide(url: object, allow: AllowList, addresses: Sequence[str | IPAddress] = ()) -> Pinned:
    """The whole decision for one hop, given what the host resolves to. Pure: no I/O."""
    target = parse_target(url)
    listed = check_target(target, allow)
    return Pinned(target, check_addresses(target, addresses, allow_listed=listed), listed)


async def guard(url: object, allow: AllowList, resolver: Resolver) -> Pinned:
    """`decide` with the host resolved once through `resolver` (skipped for IP literals)."""
    return await _resolved(parse_target(url), allow, resolver)


def host_target(host: object, port: object) -> Target:
    """A bare host and TCP port (a database server, not a URL) as the guard sees it.

    The host must be a DNS name or an IP literal (IPv6 without brackets, any IPv4 spelling) and
    nothing else, so no URL syntax can make the guard check another host than the one dialled.
    """
    shown = f"{host!r:.200}:{port!r:.20}"
    if not isinstance(host, str) or not host or _HOST_CHARS.fullmatch(host) is None:
        raise TargetRefused(shown, "the host must be a DNS name or an IP address")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise TargetRefused(shown, "the port must be a number from 1 to 65535")
    literal = f"[{host}]" if ":" in host else host
    return parse_target(f"http://{literal}:{port}/")


async def guard_host(host: object, port: object, allow: AllowList, resolver: Resolver) -> Pinned:
    """The guard for clients that are not HTTP (database drivers): the same rules as `guard`
    (ports, names, every resolved address) for `host`:`port`, resolved once."""
    return await _resolved(host_target(host, port), allow, resolver)


async def _resolved(target: Target, allow: AllowList, resolver: Resolver) -> Pinned:
    listed = check_target(target, allow)
    addresses: Sequence[str] = ()
    if target.ip is None:
        try:
            addresses = await resolver.resolve(target.host, target.port)
        except (OSError, UnicodeError) as error:
            raise ToolError(
                f"could not resolve {target.host}: {error}", details={"host": target.host}
            ) from None
    return Pinned(target, check_addresses(target, addresses, allow_listed=listed), listed)
