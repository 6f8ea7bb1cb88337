"""Log-in throttling: budgets reserved before checking, per (email, source), per source, and per
account for unknown sources only; and where a source comes from."""

from __future__ import annotations

import asyncio

import pytest
from pasar_core.accounts.sources import client_source
from pasar_core.accounts.throttle import (
    Budget,
    InMemoryAttempts,
    LoginThrottle,
    ThrottlePolicy,
    TooManyAttempts,
)
from pasar_core.errors import StartupError
from pasar_core.settings import Settings

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(clock: Clock, **policy: float) -> LoginThrottle:
    return LoginThrottle(InMemoryAttempts(clock=clock), ThrottlePolicy(**policy))  # type: ignore[arg-type]


async def test_reservations_count_before_any_result() -> None:
    """Attempts still in flight use the budget: the next one is refused before checking."""
    limiter = throttle(Clock(), per_pair=3)
    attempts = [await limiter.reserve("a@b.co", "1.1.1.1") for _ in range(3)]
    with pytest.raises(TooManyAttempts) as caught:
        await limiter.reserve("a@b.co", "1.1.1.1")
    assert 0 < caught.value.retry_after_s <= 900
    await attempts[0].succeeded()  # a success gives its slot back and clears the pair
    await limiter.reserve("a@b.co", "1.1.1.1")


async def test_failures_leave_the_window() -> None:
    clock = Clock()
    limiter = throttle(clock, per_pair=2, pair_window_s=10)
    for _ in range(2):
        await limiter.reserve("k@b.co", "s")
    clock.now += 4
    with pytest.raises(TooManyAttempts) as caught:
        await limiter.reserve("k@b.co", "s")
    assert caught.value.retry_after_s == 6
    clock.now += 6.5
    await limiter.reserve("k@b.co", "s")


async def test_a_refused_reservation_counts_nothing() -> None:
    counter = InMemoryAttempts(clock=Clock())
    small, big = Budget("small", 1, 60), Budget("big", 5, 60)
    await counter.reserve([small, big])
    for _ in range(10):
        with pytest.raises(TooManyAttempts):
            await counter.reserve([small, big])
    for _ in range(4):  # `big` has exactly its four remaining slots
        await counter.reserve([big])
    with pytest.raises(TooManyAttempts):
        await counter.reserve([big])


async def test_a_source_is_limited_across_accounts() -> None:
    limiter = throttle(Clock(), per_source=5)
    for index in range(5):
        await limiter.reserve(f"user{index}@b.co", "6.6.6.6")
    with pytest.raises(TooManyAttempts):
        await limiter.reserve("fresh@b.co", "6.6.6.6")
    await limiter.reserve("fresh@b.co", "7.7.7.7")


async def test_a_stranger_exhausts_the_account_budget_but_not_the_owners_known_source() -> None:
    limiter = throttle(Clock(), per_pair=3, per_account=6)
    owner = await limiter.reserve("own@b.co", "10.0.0.1")
    await owner.succeeded()  # the owner has logged in from here: a known source
    for source in ("6.0.0.1", "6.0.0.2"):
        for _ in range(3):
            await limiter.reserve("own@b.co", source)
    with pytest.raises(TooManyAttempts):
        await limiter.reserve("own@b.co", "6.0.0.3")  # unknown sources wait
    for _ in range(3):  # the owner still has their own pair budget
        await limiter.reserve("own@b.co", "10.0.0.1")
    with pytest.raises(TooManyAttempts):
        await limiter.reserve("own@b.co", "10.0.0.1")


async def test_known_sources_are_forgotten_after_a_while() -> None:
    clock = Clock()
    limiter = throttle(clock, per_account=1, known_source_s=100)
    await (await limiter.reserve("k@b.co", "1.1.1.1")).succeeded()
    await limiter.reserve("k@b.co", "2.2.2.2")  # uses the account budget
    await limiter.reserve("k@b.co", "1.1.1.1")  # known: skips it
    clock.now += 101
    with pytest.raises(TooManyAttempts):
        await limiter.reserve("k@b.co", "1.1.1.1")


async def test_concurrent_reservations_never_exceed_the_budget() -> None:
    limiter = throttle(Clock(), per_pair=10)

    async def one() -> bool:
        try:
            await limiter.reserve("c@b.co", "1.1.1.1")
        except TooManyAttempts:
            return False
        await asyncio.sleep(0)
        return True

    results = await asyncio.gather(*(one() for _ in range(40)))
    assert results.count(True) == 10


async def test_memory_is_bounded() -> None:
    counter = InMemoryAttempts(max_keys=100, clock=Clock())
    for index in range(1000):
        await counter.reserve([Budget(f"k{index}", 1, 60)])
        await counter.remember(f"m{index}", 60)
    assert len(counter._attempts) == 100
    assert len(counter._marks) == 100
    assert await counter.remembers("m999")
    assert not await counter.remembers("m0")


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.7", (), (), "203.0.113.7"),
        # Anyone can send X-Forwarded-For: without trusted proxies it is ignored.
        ("203.0.113.7", ("198.51.100.1",), (), "203.0.113.7"),
        ("203.0.113.7", ("198.51.100.1",), ("10.0.0.0/8",), "203.0.113.7"),
        # From a trusted proxy: the rightmost address that is not a trusted proxy.
        ("10.0.0.2", ("198.51.100.1",), ("10.0.0.0/8",), "198.51.100.1"),
        ("10.0.0.2", ("6.6.6.6, 198.51.100.1, 10.0.0.9",), ("10.0.0.0/8",), "198.51.100.1"),
        ("10.0.0.2", ("6.6.6.6", "198.51.100.1"), ("10.0.0.0/8",), "198.51.100.1"),
        ("10.0.0.2", ("garbage, 198.51.100.1",), ("10.0.0.0/8",), "198.51.100.1"),
        ("10.0.0.2", ("198.51.100.1, garbage",), ("10.0.0.0/8",), "10.0.0.2"),
        ("10.0.0.2", (), ("10.0.0.0/8",), "10.0.0.2"),
        ("10.0.0.2", ("198.51.100.1:4711",), ("10.0.0.2",), "198.51.100.1"),
        ("::1", ("[2001:db8::5]:443",), ("::1",), "2001:db8::/64"),
        # IPv6 clients count by /64; IPv4-mapped addresses as IPv4.
        ("2001:db8:1:2:aaaa::1", (), (), "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", (), (), "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", (), (), "203.0.113.7"),
        ("testclient", (), (), "peer:testclient"),
        (None, ("198.51.100.1",), ("0.0.0.0/0",), "unknown"),
    ],
)
def test_client_source(
    peer: str | None, forwarded: tuple[str, ...], trusted: tuple[str, ...], expected: str
) -> None:
    assert client_source(peer, forwarded, trusted) == expected


def test_trusted_proxies_setting_is_checked_at_start_up() -> None:
    settings = Settings.from_env({"PASAR_TRUSTED_PROXIES": "10.0.0.0/8, ::1"})
    assert settings.trusted_proxies == ("10.0.0.0/8", "::1")
    with pytest.raises(StartupError, match="not an IP address"):
        Settings.from_env({"PASAR_TRUSTED_PROXIES": "10.0.0.0/8,proxy.internal"})
