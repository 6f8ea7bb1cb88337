"""Log-in throttling, counted before the password is checked.

Every attempt first reserves one slot in each budget that applies to it, atomically; an attempt
for which any budget is full is refused (429 with Retry-After) without hashing anything, so 40
concurrent guesses for one account cost at most one budget's worth of argon2 work. A success
gives its slots back; a failure keeps them until they leave the window.

The budgets (`ThrottlePolicy`):
- per (email, source): a guesser at one address, and the owner's own typing mistakes;
- per source: one address trying many accounts;
- per email, only for sources that have never logged in to that account (within
  `known_source_s`): many addresses guessing one account. A stranger can use it up, but that does
  not lock the owner out: from a source the account has logged in from before, the owner skips it
  (and still has a per-(email, source) budget of their own).

A source is a client address (`pasar_core.accounts.sources`). The counting sits behind
`AttemptCounter`; `InMemoryAttempts` counts in this process, so with several server processes each
keeps its own budgets (which still bounds guessing, per process).
"""

from __future__ import annotations

import math
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pasar_core.errors import PasarError

MAX_TRACKED = 100_000


class TooManyAttempts(PasarError):
    code = "RATE_LIMITED"
    status = 429

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"too many log-in attempts; try again in {retry_after_s} s",
            details={"retry_after_s": retry_after_s},
        )
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Budget:
    """At most `limit` attempts counted under `key` within any `window_s` seconds."""

    key: str
    limit: int
    window_s: float


class AttemptCounter(Protocol):
    """Where attempts are counted (this process now; a shared store such as Redis later)."""

    async def reserve(self, budgets: Sequence[Budget]) -> str:
        """Count one attempt in every budget if all have room, atomically, and return its id;
        otherwise count nothing and raise `TooManyAttempts`."""
        ...

    async def release(self, budgets: Sequence[Budget], attempt_id: str) -> None:
        """Take back the attempt `reserve` counted in these budgets."""
        ...

    async def clear(self, key: str) -> None:
        """Forget every attempt counted under `key`."""
        ...

    async def remember(self, key: str, ttl_s: float) -> None:
        """Mark `key` (a known source of an account) for `ttl_s` seconds."""
        ...

    async def remembers(self, key: str) -> bool: ...


class InMemoryAttempts:
    """Sliding windows in this process. No await inside a method, so each is atomic on the event
    loop. Memory is bounded: past `max_keys` keys, the least recently used are forgotten."""

    def __init__(
        self, max_keys: int = MAX_TRACKED, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_keys = max_keys
        self._clock = clock
        self._attempts: OrderedDict[str, deque[tuple[float, str]]] = OrderedDict()
        self._marks: OrderedDict[str, float] = OrderedDict()

    def _recent(self, budget: Budget, now: float) -> deque[tuple[float, str]]:
        attempts = self._attempts.get(budget.key)
        if attempts is None:
            attempts = self._attempts[budget.key] = deque()
            while len(self._attempts) > self._max_keys:
                self._attempts.popitem(last=False)
        else:
            self._attempts.move_to_end(budget.key)
        while attempts and attempts[0][0] <= now - budget.window_s:
            attempts.popleft()
        return attempts

    async def reserve(self, budgets: Sequence[Budget]) -> str:
        now = self._clock()
        windows = [(budget, self._recent(budget, now)) for budget in budgets]
        waits = [
            attempts[0][0] + budget.window_s - now
            for budget, attempts in windows
            if len(attempts) >= budget.limit
        ]
        if waits:
            raise TooManyAttempts(max(1, math.ceil(max(waits))))
        attempt_id = uuid.uuid4().hex
        for _, attempts in windows:
            attempts.append((now, attempt_id))
        return attempt_id

    async def release(self, budgets: Sequence[Budget], attempt_id: str) -> None:
        for budget in budgets:
            attempts = self._attempts.get(budget.key)
            if attempts is None:
                continue
            for entry in attempts:
                if entry[1] == attempt_id:
                    attempts.remove(entry)
                    break

    async def clear(self, key: str) -> None:
        self._attempts.pop(key, None)

    async def remember(self, key: str, ttl_s: float) -> None:
        self._marks[key] = self._clock() + ttl_s
        self._marks.move_to_end(key)
        while len(self._marks) > self._max_keys:
            self._marks.popitem(last=False)

    async def remembers(self, key: str) -> bool:
        until = self._marks.get(key)
        if until is None:
            return False
        if until <= self._clock():
            del self._marks[key]
            return False
        return True


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    per_pair: int = 10
    pair_window_s: float = 900.0
    per_source: int = 100
    source_window_s: float = 900.0
    per_account: int = 50
    account_window_s: float = 3600.0
    known_source_s: float = 30 * 86_400.0


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """One reserved attempt: report `succeeded()` once the password matched; a failure needs
    nothing (its slots stay counted)."""

    throttle: LoginThrottle
    email: str
    source: str
    budgets: tuple[Budget, ...]
    attempt_id: str

    async def succeeded(self) -> None:
        await self.throttle.succeeded(self)


class LoginThrottle:
    def __init__(
        self, counter: AttemptCounter | None = None, policy: ThrottlePolicy | None = None
    ) -> None:
        self._counter: AttemptCounter = counter or InMemoryAttempts()
        self.policy = policy or ThrottlePolicy()

    @staticmethod
    def _pair_key(email: str, source: str) -> str:
        return f"pair:{email}|{source}"

    @staticmethod
    def _known_key(email: str, source: str) -> str:
        return f"known:{email}|{source}"

    async def reserve(self, email: str, source: str) -> LoginAttempt:
        """Count an attempt before its password is checked; `TooManyAttempts` when over budget."""
        policy = self.policy
        budgets = [
            Budget(self._pair_key(email, source), policy.per_pair, policy.pair_window_s),
            Budget(f"source:{source}", policy.per_source, policy.source_window_s),
        ]
        if not await self._counter.remembers(self._known_key(email, source)):
            budgets.append(Budget(f"account:{email}", policy.per_account, policy.account_window_s))
        attempt_id = await self._counter.reserve(budgets)
        return LoginAttempt(self, email, source, tuple(budgets), attempt_id)

    async def succeeded(self, attempt: LoginAttempt) -> None:
        await self._counter.release(attempt.budgets, attempt.attempt_id)
        await self._counter.clear(self._pair_key(attempt.email, attempt.source))
        await self._counter.remember(
            self._known_key(attempt.email, attempt.source), self.policy.known_source_s
        )
