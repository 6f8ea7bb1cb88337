"""`guard_host`: the web tools' SSRF guard for clients that are not HTTP (database drivers)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pasar_core.errors import ToolError
from pasar_core.net.guard import AllowList, TargetRefused, guard_host, host_target

pytestmark = pytest.mark.anyio


class Table:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError("no such name")
        return self.answers[host]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    "host",
    ["a/b@127.0.0.1", "evil.com#@10.0.0.1", "x?y", "[::1]", "fe80::1%eth0", "a b", "", "h\x00"],
)
def test_url_syntax_in_a_host_is_refused(host: str) -> None:
    with pytest.raises(TargetRefused, match="DNS name or an IP address"):
        host_target(host, 5432)


@pytest.mark.parametrize("port", [0, 65536, -1, True, "5432"])
def test_ports_must_be_numbers_in_range(port: object) -> None:
    with pytest.raises(TargetRefused, match="port"):
        host_target("db.example.com", port)


@pytest.mark.parametrize(
    ("host", "canonical"),
    [("0x7f.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("DB.Example.COM.", "db.example.com"),
     ("::ffff:127.0.0.1", "::ffff:7f00:1")],
)  # fmt: skip
def test_hosts_are_normalised_as_the_web_guard_does(host: str, canonical: str) -> None:
    assert host_target(host, 5432).host == canonical


async def test_guard_host_applies_the_same_rules_with_one_lookup() -> None:
    table = Table({"db.example.com": ["93.184.216.34"], "inside.example.com": ["10.0.0.7"]})
    pinned = await guard_host("db.example.com", 5432, AllowList(), table)
    assert [str(a) for a in pinned.addresses] == ["93.184.216.34"]
    with pytest.raises(TargetRefused, match="private"):
        await guard_host("inside.example.com", 5432, AllowList(), table)
    listed = AllowList.parse(["inside.example.com"])
    assert [
        str(a) for a in (await guard_host("inside.example.com", 5432, listed, table)).addresses
    ] == ["10.0.0.7"]
    with pytest.raises(TargetRefused, match="metadata"):
        await guard_host("169.254.169.254", 5432, AllowList.parse(["169.254.169.254"]), table)
    with pytest.raises(TargetRefused, match="port 22"):
        await guard_host("db.example.com", 22, AllowList(), table)
    with pytest.raises(ToolError, match="could not resolve"):
        await guard_host("missing.example.com", 5432, AllowList(), table)
    assert table.asked == [
        "db.example.com",
        "inside.example.com",
        "inside.example.com",
        "missing.example.com",
    ]
