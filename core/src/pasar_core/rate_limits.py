"""Rate limits per user, per API key and per client address, by route class (auth, writes,
runs), with GCRA (the generic cell rate algorithm): each key keeps one number, its theoretical
arrival time, so a check is a dict lookup and a few float operations in this process, or one
Lua script call in Redis (shared by every process) when `REDIS_URL` is set.

A limit `N/period` lets a burst of N through at once and then one every `period / N` seconds.
One request may cost more than one (each alias of a limited GraphQL field counts). Every key of
a request is checked and charged together: a request refused by one key charges none.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from pasar_core.accounts.principal import Principal
from pasar_core.errors import PasarError, StartupError

MAX_TRACKED = 100_000
WARN_EVERY_S = 60.0

log = logging.getLogger("pasar.rate_limits")


class RouteClass(StrEnum):
    AUTH = "auth"
    """Sign-up, log-in, refresh, password change, consent sign-in: keyed by address only."""
    WRITES = "writes"
    """Creating, changing and deleting (agents, tools, keys, connections, plugins)."""
    RUNS = "runs"
    """Starting or resuming a run (execute, approval decisions)."""


class RateLimited(PasarError):
    code = "RATE_LIMITED"
    status = 429

    def __init__(self, route_class: RouteClass, retry_after_s: int) -> None:
        super().__init__(
            f"too many {route_class.value} requests; try again in {retry_after_s} s",
            details={"retry_after_s": retry_after_s, "retryAfter": retry_after_s,
                     "limit": route_class.value},
        )  # fmt: skip
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `limit` requests per `period_s` (a burst of `limit`, then evenly spread)."""

    limit: int
    period_s: float

    @property
    def interval_s(self) -> float:
        return self.period_s / self.limit


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """Limits per route class (None: unlimited), from settings."""

    rates: dict[RouteClass, Rate | None]

    def rate(self, route_class: RouteClass) -> Rate | None:
        return self.rates.get(route_class)


Budget = tuple[str, Rate]
"""A key and its rate."""


class Counter(Protocol):
    async def charge(self, budgets: Sequence[Budget], cost: int) -> float:
        """Charge `cost` to every budget if all have room, and return 0; else charge nothing
        and return the seconds until they would have."""
        ...

    async def close(self) -> None: ...


class InProcessCounter:
    """GCRA in this process: no await inside `charge`, so it is atomic on the event loop.
    Memory is bounded: past `max_keys`, the least recently used keys are forgotten."""

    def __init__(
        self, max_keys: int = MAX_TRACKED, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._tat: OrderedDict[str, float] = OrderedDict()
        self._max_keys = max_keys
        self._clock = clock

    async def charge(self, budgets: Sequence[Budget], cost: int) -> float:
        now = self._clock()
        # Backlogs relative to now: `now + 60 - 60 - now` on a large clock is not always 0.0,
        # and a budget spent exactly was then refused by rounding.
        planned = [
            (key, max(self._tat.get(key, now) - now, 0.0) + rate.interval_s * cost, rate.period_s)
            for key, rate in budgets
        ]
        wait = max((backlog - period for _, backlog, period in planned), default=0.0)
        if wait > 0:
            return wait
        for key, backlog, _ in planned:
            self._tat[key] = now + backlog
            self._tat.move_to_end(key)
        while len(self._tat) > self._max_keys:
            self._tat.popitem(last=False)
        return 0.0

    async def close(self) -> None:
        return None


# KEYS: the keys; ARGV: cost, then each key's interval and period (seconds). Redis' own clock,
# so every process agrees on "now". Returns the wait in seconds as a string ("0": charged).
GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cost = tonumber(ARGV[1])
local planned = {}
local wait = 0
for i, key in ipairs(KEYS) do
    local step = tonumber(ARGV[2 * i]) * cost
    local period = tonumber(ARGV[2 * i + 1])
    local backlog = tonumber(redis.call('GET', key) or now) - now
    if backlog < 0 then backlog = 0 end
    planned[i] = now + backlog + step
    if backlog + step - period > wait then wait = backlog + step - period end
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
    redis.call('SET', key, tostring(planned[i]), 'PX', math.ceil((planned[i] - now) * 1000) + 1)
end
return '0'
"""


class RedisCounter:
    """GCRA in Redis: one script call per check, shared by every server process."""

    def __init__(self, url: str, prefix: str = "pasar:rl:") -> None:
        from redis.asyncio import Redis

        self._redis: Any = Redis.from_url(url)
        self._script: Any = self._redis.register_script(GCRA_SCRIPT)
        self._prefix = prefix
        self._warned_at = -math.inf

    async def charge(self, budgets: Sequence[Budget], cost: int) -> float:
        from redis.exceptions import RedisError

        args: list[float] = [cost]
        for _, rate in budgets:
            args += [rate.interval_s, rate.period_s]
        try:
            wait = await self._script(keys=[self._prefix + key for key, _ in budgets], args=args)
        except (RedisError, OSError) as error:
            # Open, not closed: an unreachable Redis must not refuse every write of the API.
            now = time.monotonic()
            if now - self._warned_at > WARN_EVERY_S:
                self._warned_at = now
                log.warning("rate limits not counted: Redis unreachable (%s)", type(error).__name__)
            return 0.0
        return float(wait)

    async def close(self) -> None:
        await self._redis.aclose()


def caller_budgets(
    route_class: RouteClass, rate: Rate, principal: Principal | None, source: str, factor: int
) -> list[Budget]:
    """The budgets one request draws on: its user and API key when signed in, and its address,
    whose budget is `factor` times larger then (several people may share one address)."""
    name = route_class.value
    if principal is None:
        return [(f"{name}:src:{source}", rate)]
    budgets = [
        (f"{name}:user:{principal.user_id}", rate),
        (f"{name}:src:{source}", Rate(rate.limit * factor, rate.period_s)),
    ]
    if principal.api_key_id is not None:
        budgets.append((f"{name}:key:{principal.api_key_id}", rate))
    return budgets


class RateLimiter:
    def __init__(
        self, policy: RatePolicy, counter: Counter | None = None, *, source_factor: int = 4
    ) -> None:
        self.policy = policy
        self.counter: Counter = counter or InProcessCounter()
        self.source_factor = source_factor

    async def check(
        self,
        route_class: RouteClass,
        principal: Principal | None,
        source: str,
        cost: int = 1,
    ) -> None:
        """Charge `cost` requests of `route_class`; `RateLimited` (with the wait) when over."""
        rate = self.policy.rate(route_class)
        if rate is None or cost <= 0:
            return
        budgets = caller_budgets(route_class, rate, principal, source, self.source_factor)
        wait = await self.counter.charge(budgets, cost)
        if wait > 0:
            raise RateLimited(route_class, max(1, math.ceil(wait)))

    async def close(self) -> None:
        await self.counter.close()


def unlimited() -> RateLimiter:
    return RateLimiter(RatePolicy({}))


def parse_rate(name: str, raw: str) -> Rate | None:
    """`N/SECONDS` (`30/60`: 30 a minute); `0` or `off`: unlimited."""
    value = raw.strip().lower()
    if value in ("0", "off", "none", "unlimited"):
        return None
    count, _, period = value.partition("/")
    try:
        rate = Rate(int(count), float(period or "60"))
    except ValueError:
        rate = Rate(0, 0)
    if rate.limit <= 0 or not 0 < rate.period_s < math.inf:
        raise StartupError(f"{name} must be N/SECONDS (30/60: 30 a minute) or off, got {raw!r}")
    return rate
