"""The SSRF guard's decisions: probes refused without connecting, allow-list rules, properties."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import Counter
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pasar_core.errors import ToolError, ToolInputInvalid
from pasar_core.net.guard import (
    AllowList,
    TargetRefused,
    classify,
    decide,
    guard,
    parse_ipv4,
    parse_target,
)
from pasar_core.registry import Registry
from pasar_web.limits import MAX_URL_CHARS

LITERAL_PROBES = [
    # IPv4 loopback in every spelling
    "http://127.0.0.1/",
    "http://127.0.0.2:8080/",
    "http://127.255.255.254/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://0x7F.0.0.1/",
    "http://017700000001/",
    "http://127.1/",
    "http://127.0.1/",
    "http://127.000.000.001/",
    "http://0x7f.0x0.0x0.0x1/",
    "http://127.0.0.1./",
    "https://127.0.0.1:443/",
    # unspecified / this network
    "http://0/",
    "http://0.0.0.0/",
    "http://0x0/",
    "http://0.0.0.0:8080/",
    # RFC 1918 and CGNAT
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://012.0.0.1/",
    "http://167772161/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.0.1/",
    "http://192.168.1.1:8443/",
    "http://0xc0.0xa8.1.1/",
    "http://3232235777/",
    "http://100.64.0.1/",
    "http://100.127.255.255/",
    # cloud metadata
    "http://169.254.169.254/latest/meta-data/",
    "http://0xa9fea9fe/",
    "http://2852039166/",
    "http://0251.0376.0251.0376/",
    "http://169.254.169.254.",
    "http://169.254.170.2/v2/credentials",
    "http://100.100.100.200/latest/meta-data/",
    "http://192.0.0.192/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.GOOGLE.INTERNAL./",
    "http://metadata/",
    "http://metadata.goog/",
    "http://instance-data/",
    "http://instance-data.ec2.internal/",
    "http://[fd00:ec2::254]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:a9fe:a9fe::1]/",
    # link-local, multicast, broadcast, reserved, benchmarking, documentation
    "http://169.254.1.1/",
    "http://224.0.0.1/",
    "http://239.255.255.250:1900/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://198.18.0.1/",
    "http://198.19.255.255/",
    "http://192.0.2.1/",
    "http://198.51.100.1/",
    "http://203.0.113.1/",
    "http://192.0.0.1/",
    "http://192.88.99.1/",
    # IPv6
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::FFFF:127.0.0.1]:8080/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::127.0.0.1]/",
    "http://[::10.0.0.1]/",
    "http://[::ffff:0:7f00:1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:c0a8:101::1]/",
    "http://[2001::1]/",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    "http://[64:ff9b::127.0.0.1]/",
    "http://[64:ff9b:1::1]/",
    "http://[2001:db8::1]/",
    "http://[100::1]/",
    # names that only mean something inside a network
    "http://localhost/",
    "http://LOCALHOST./",
    "http://foo.localhost/",
    "http://intranet/",
    "http://db.internal/",
    "http://printer.local/",
    "http://router.lan/",
    "http://nas.home.arpa/",
    # schemes, credentials, ports and malformed hosts
    "ftp://example.com/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "dict://127.0.0.1:11211/stats",
    "javascript:alert(1)",
    "//127.0.0.1/",
    "http:///path",
    "http://user:pass@example.com/",
    "http://example.com@127.0.0.1/",
    "http://example.com:22/",
    "http://example.com:25/",
    "http://example.com:0/",
    "http://example.com:65536/",
    "http://1.2.3.4.5/",
    "http://256.1.1.1/",
    "http://08.1.1.1/",
    "http://%31%32%37.0.0.1/",
    "http://foo\\bar/",
    "http://[::1/",
    "http://example.com/" + "a" * 9000,
]


def test_there_are_enough_probes(dns) -> None:
    assert len(set(LITERAL_PROBES)) == len(LITERAL_PROBES)
    assert len(LITERAL_PROBES) + len(dns.private_names) >= 80


@pytest.mark.parametrize("url", LITERAL_PROBES)
def test_decision_refuses_literal_probe(url: str) -> None:
    with pytest.raises(TargetRefused):
        decide(url, AllowList(), ["93.184.215.14"])


@pytest.mark.anyio
@pytest.mark.parametrize("url", LITERAL_PROBES)
async def test_tools_refuse_literal_probe_without_connecting(
    url: str, registry: Registry, ctx_for, dns, no_connect
) -> None:
    ctx = ctx_for(resolver=dns.resolver)
    expected = ToolInputInvalid if len(url) > MAX_URL_CHARS else TargetRefused  # schema first
    for tool in ("web:fetch", "http:get"):
        with pytest.raises(expected):
            await registry.invoke(tool, ctx, {"url": url})
    assert no_connect.calls == []
    assert dns.zone.queries == []  # refused before any lookup


@pytest.mark.anyio
async def test_tools_refuse_names_resolving_to_private_addresses(
    registry: Registry, ctx_for, dns, no_connect
) -> None:
    ctx = ctx_for(resolver=dns.resolver)
    probes = [f"http://{name}/" for name in dns.private_names]
    assert len(probes) >= 25
    for url in probes:
        with pytest.raises(TargetRefused) as refused:
            await registry.invoke("web:fetch", ctx, {"url": url})
        host = url.split("/")[2]
        assert "resolves to" in refused.value.reason
        assert not any(address in refused.value.message for address in dns.zone.zone[host])
        with pytest.raises(TargetRefused):
            decide(url, AllowList(), dns.zone.zone[host])
    assert no_connect.calls == []


@pytest.mark.anyio
async def test_allow_listed_names_still_refuse_metadata_and_link_local(
    registry: Registry, ctx_for, dns, no_connect
) -> None:
    names = ["metadata.test", "linklocal.test", "v6metadata.test", "zero.test", "multicast.test"]
    ctx = ctx_for(allow=names, resolver=dns.resolver)
    for name in names:
        with pytest.raises(TargetRefused, match="never reachable"):
            await registry.invoke("web:fetch", ctx, {"url": f"http://{name}/"})
    assert no_connect.calls == []


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("1.2.3.4.", "1.2.3.4"),
        ("8.8.8.8", "8.8.8.8"),
        ("134744072", "8.8.8.8"),
        ("example.com", None),
        ("1.2.3.com", None),
    ],
)
def test_parse_ipv4_matches_inet_aton(host: str, expected: str | None) -> None:
    parsed = parse_ipv4(host)
    assert (str(parsed) if parsed else None) == expected
    if expected is not None and host != "0x":  # WHATWG reads a bare "0x" as 0; inet_aton refuses
        assert socket.inet_ntoa(socket.inet_aton(host.rstrip("."))) == expected


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.1.1.1", "1.256.1.1", "08.1", "0x1g.1", "foo.1"])
def test_parse_ipv4_rejects_what_ends_in_a_number_but_is_no_address(host: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_ipv4(host)


def test_canonical_form_is_what_gets_sent() -> None:
    pinned = decide("http://134744072:8080/a#frag", AllowList())
    assert str(pinned.target.url) == "http://8.8.8.8:8080/a"
    assert pinned.addresses == (ipaddress.ip_address("8.8.8.8"),)
    name = decide("https://Example.COM./x", AllowList(), ["93.184.215.14"])
    assert str(name.target.url) == "https://example.com/x"
    assert name.target.host == "example.com"
    mapped = decide("http://[::ffff:8.8.8.8]/", AllowList())
    assert mapped.addresses == (ipaddress.ip_address("8.8.8.8"),)


def test_allow_list_relaxes_private_addresses_only_for_listed_hosts_and_ports() -> None:
    allow = AllowList.parse(["10.0.0.5:8080", "loopback.test", "[::1]:9000", "nas.home.arpa"])
    assert decide("http://10.0.0.5:8080/", allow).allow_listed
    with pytest.raises(TargetRefused):
        decide("http://10.0.0.5:8081/", allow)
    with pytest.raises(TargetRefused):
        decide("http://10.0.0.6:8080/", allow)
    assert decide("http://loopback.test:5000/", allow, ["127.0.0.1"]).addresses
    with pytest.raises(TargetRefused, match="port 22"):
        decide("http://loopback.test:22/", allow, ["127.0.0.1"])
    assert decide("http://[::1]:9000/", allow).allow_listed
    assert decide("http://nas.home.arpa/", allow, ["192.168.1.10"]).allow_listed
    with pytest.raises(TargetRefused, match="never reachable"):
        decide("http://loopback.test/", allow, ["169.254.169.254"])
    with pytest.raises(TargetRefused):
        decide("http://metadata.google.internal/", AllowList.parse(["metadata.google.internal"]))
    with pytest.raises(TargetRefused):
        decide("http://169.254.169.254/", AllowList.parse(["169.254.169.254"]))
    # a public host with one private answer is refused as a whole
    with pytest.raises(TargetRefused):
        decide("http://example.com/", AllowList(), ["93.184.215.14", "10.0.0.1"])


@pytest.mark.parametrize("entry", ["http://x/", "a:b:c", "x:0", "x:70000", "[zz]:80", "", 5])
def test_bad_allow_list_entries_are_errors(entry: object) -> None:
    with pytest.raises(ToolError):
        AllowList.parse([entry])


def test_public_addresses_pass() -> None:
    for address in ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"]:
        assert classify(ipaddress.ip_address(address)) == (None, False)
    assert decide("https://example.com/", AllowList(), ["2606:4700:4700::1111"]).addresses


# ---------------------------------------------------------------- properties

T = TypeVar("T")

_NEVER_V4 = [ipaddress.IPv4Network(net) for net in ("169.254.0.0/16", "0.0.0.0/8", "224.0.0.0/3")]


def _independently_forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """An oracle built from ipaddress's own predicates, separate from the guard's tables."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return _independently_forbidden(ip.ipv4_mapped)
        if ip.sixtofour is not None and _independently_forbidden(ip.sixtofour):
            return True
        if ip in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64 (for IPv6-only hosts): its IPv4
            return _independently_forbidden(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.teredo is not None:
            return True
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _ipv4_spellings(value: int) -> st.SearchStrategy[str]:
    octets = list(value.to_bytes(4, "big"))
    return st.sampled_from(
        [
            ".".join(map(str, octets)),
            str(value),
            hex(value),
            ".".join(f"0{octet:o}" for octet in octets),
            ".".join(hex(octet) for octet in octets),
            f"{octets[0]}.{value & 0xFFFFFF}",
            f"{octets[0]}.{octets[1]}.{value & 0xFFFF}",
            f"[::ffff:{'.'.join(map(str, octets))}]",
            f"[64:ff9b::{'.'.join(map(str, octets))}]",
        ]
    )


_interesting_v4 = st.sampled_from(
    [0x7F000001, 0x0A000001, 0xA9FEA9FE, 0xC0A80101, 0x64400001, 0, 0xFFFFFFFF, 0x08080808]
) | st.integers(min_value=0, max_value=2**32 - 1)

# Well-formed targets: a scheme the guard serves, a valid host, an open port. Hostility lives in
# the addresses (literal or resolved), so most examples get past parsing to the property itself.
_public_v4 = st.integers(min_value=0, max_value=2**32 - 1).filter(
    lambda value: ipaddress.IPv4Address(value).is_global
)
_public_v6 = st.ip_addresses(v=6, network="2000::/3").filter(lambda ip: ip.is_global)
_HOSTILE_ADDRESSES = [
    "127.0.0.1", "127.9.9.9", "10.1.2.3", "172.16.5.4", "192.168.1.1", "100.64.0.1",
    "169.254.169.254", "169.254.10.10", "169.254.170.2", "100.100.100.200", "0.0.0.0",
    "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1", "192.0.2.1", "::",
    "::1", "fd00::1", "fd00:ec2::254", "fe80::1", "fec0::1", "ff02::1", "::ffff:127.0.0.1",
    "::ffff:169.254.169.254", "::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1",
    "2002:7f00:1::1", "2002:a9fe:a9fe::1", "2001:0:4136:e378::1", "2001:db8::1",
]  # fmt: skip
_hostile_addresses = st.one_of(
    st.sampled_from(_HOSTILE_ADDRESSES),
    st.ip_addresses(network="10.0.0.0/8").map(str),
    st.ip_addresses(network="169.254.0.0/16").map(str),
    st.ip_addresses(network="fc00::/7").map(str),
    st.ip_addresses(network="fe80::/10").map(str),
)
_public_addresses = st.one_of(
    _public_v4.map(lambda value: str(ipaddress.IPv4Address(value))), _public_v6.map(str)
)


def _weighted(*choices: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """One of `choices` in proportion to their weights (one_of draws them evenly); hypothesis
    favours low indices, so list the choice that should dominate first."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(min_value=0, max_value=len(pool) - 1).flatmap(pool.__getitem__)


_resolved_mostly_public = st.lists(
    _weighted((4, _public_addresses), (1, _hostile_addresses)), min_size=1, max_size=3
)
_dns_names = st.builds(
    lambda name, case, dot: (name.upper() if case else name) + dot,
    st.from_regex(r"[a-z0-9]{1,12}(-[a-z0-9]{1,6})?(\.[a-z0-9]{1,8}){0,2}\.(com|org|net|io)",
                  fullmatch=True),
    st.booleans(),
    st.sampled_from(["", "", "", "."]),
)  # fmt: skip
_literal_hosts = _weighted(
    (2, _public_v4.flatmap(_ipv4_spellings)),
    (1, _interesting_v4.flatmap(_ipv4_spellings)),
    (2, _public_v6.map(lambda ip: f"[{ip}]")),
    (1, _hostile_addresses.filter(lambda text: ":" in text).map(lambda ip: f"[{ip}]")),
)
_well_formed_urls = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.sampled_from(["http", "https", "HTTP", "Https"]),
    _weighted((3, _dns_names), (1, _literal_hosts)),
    st.sampled_from(["", "", ":80", ":443", ":8080", ":1024", ":65535"]),
    st.sampled_from(["/", "", "/a?b=c#d", "/%2e%2e/", "/x/../y"]),
)
_hosts = st.one_of(
    _interesting_v4.flatmap(_ipv4_spellings),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
    st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True),
    st.sampled_from(["localhost", "metadata.google.internal", "x.internal", "foo.local"]),
    st.text(max_size=20),
)
_hostile_urls = st.one_of(
    st.builds(
        lambda scheme, user, host, port, path: f"{scheme}://{user}{host}{port}{path}",
        st.sampled_from(["http", "https", "HTTP", "ftp", "gopher", ""]),
        st.sampled_from(["", "", "", "user@", "a:b@"]),
        _hosts,
        st.sampled_from(["", "", ":80", ":443", ":8080", ":22", ":0", ":99999", ":"]),
        st.sampled_from(["/", "", "/a?b=c#d", "/%2e%2e/", "\\x"]),
    ),
    st.text(max_size=80),
)
_resolved = st.lists(st.ip_addresses().map(str), min_size=0, max_size=3)
_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _assert_reached(outcomes: Counter[str], reached: str, at_least: float) -> None:
    """A property is only tested by the examples that get to its check: count them."""
    total = sum(outcomes.values())
    assert outcomes[reached] >= at_least * total, f"{reached!r} in too few examples: {outcomes}"


def test_decide_only_ever_refuses_or_pins_public_addresses() -> None:
    outcomes: Counter[str] = Counter()

    @settings(_SETTINGS, max_examples=600)
    @given(url=_well_formed_urls, addresses=_resolved_mostly_public)
    def check(url: str, addresses: list[str]) -> None:
        try:
            pinned = decide(url, AllowList(), addresses)
        except TargetRefused:
            outcomes["refused"] += 1
            event("refused")
            return
        outcomes["pinned"] += 1
        event("pinned")
        assert pinned.addresses
        for ip in pinned.addresses:
            assert not _independently_forbidden(ip), (url, ip)
        host = pinned.target.url.raw_host.decode()
        try:
            literal = socket.inet_aton(host) if ":" not in host else None
        except OSError:
            literal = None
        if literal is not None:  # what getaddrinfo would have dialled for this spelling
            assert not _independently_forbidden(ipaddress.IPv4Address(literal))

    check()
    _assert_reached(outcomes, "pinned", 0.3)
    _assert_reached(outcomes, "refused", 0.1)


def test_allow_list_never_opens_metadata_link_local_or_multicast() -> None:
    outcomes: Counter[str] = Counter()

    @settings(_SETTINGS, max_examples=300)
    @given(url=_well_formed_urls, addresses=_resolved_mostly_public)
    def check(url: str, addresses: list[str]) -> None:
        try:
            target = parse_target(url)
        except TargetRefused:  # httpx refuses some zero-padded IPv4 spellings
            outcomes["unparsed"] += 1
            return
        allow = AllowList(frozenset({(target.host, None), (target.host, target.port)}))
        try:
            pinned = decide(url, allow, addresses)
        except TargetRefused:
            outcomes["refused"] += 1
            return
        relaxed = any(_independently_forbidden(ip) for ip in pinned.addresses)
        outcomes["pinned, the allow-list opening a private address" if relaxed else "pinned"] += 1
        event("pinned" + (" (allow-listed private)" if relaxed else ""))
        for ip in pinned.addresses:
            v4 = ip if isinstance(ip, ipaddress.IPv4Address) else None
            assert not ip.is_multicast
            assert not ip.is_unspecified
            assert not ip.is_link_local
            assert v4 is None or not any(v4 in net for net in _NEVER_V4), (url, ip)

    check()
    _assert_reached(outcomes, "pinned", 0.25)
    _assert_reached(outcomes, "pinned, the allow-list opening a private address", 0.05)


class _Answers:
    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    async def resolve(self, host: str, port: int) -> list[str]:
        if not self.addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.addresses


def test_guard_raises_nothing_but_tool_errors() -> None:
    """Garbage and well-formed targets alike: only ToolErrors, and whatever passes is public."""
    outcomes: Counter[str] = Counter()

    @settings(_SETTINGS, max_examples=300)
    @given(
        url=_weighted((3, _well_formed_urls), (1, _hostile_urls)),
        addresses=_weighted((3, _resolved_mostly_public), (1, _resolved)),
    )
    def check(url: str, addresses: list[str]) -> None:
        try:
            pinned = asyncio.run(guard(url, AllowList(), _Answers(addresses)))
        except ToolError as error:
            outcomes[error.code] += 1
            event(error.code)
            return
        outcomes["pinned"] += 1
        event("pinned")
        assert all(not _independently_forbidden(ip) for ip in pinned.addresses)

    check()
    _assert_reached(outcomes, "pinned", 0.15)
    _assert_reached(outcomes, TargetRefused.code, 0.2)
