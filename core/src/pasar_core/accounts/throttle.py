"""Login throttling: after too many failed log-ins for one email in a window, further attempts
are refused (429) until the window moves on, so passwords cannot be guessed at speed.

Counted per process (no shared store needed); with several server processes the limit applies
in each of them, which still bounds guessing."""

from __future__ import annotations

import time
from collections import defaultdict, deque

from pasar_core.errors import PasarError

MAX_FAILURES = 10
WINDOW_S = 900.0
MAX_TRACKED = 100_000


class TooManyAttempts(PasarError):
    code = "RATE_LIMITED"
    status = 429

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"too many failed log-ins for this account; try again in {retry_after_s} s",
            details={"retry_after_s": retry_after_s},
        )
        self.retry_after_s = retry_after_s


class LoginThrottle:
    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S) -> None:
        self._max = max_failures
        self._window = window_s
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        return failures

    def check(self, key: str) -> None:
        """Refuse when `key` has used up its failures in the window."""
        now = time.monotonic()
        failures = self._recent(key, now)
        if len(failures) >= self._max:
            raise TooManyAttempts(int(failures[0] + self._window - now) + 1)

    def failed(self, key: str) -> None:
        if len(self._failures) > MAX_TRACKED:
            self._failures.clear()  # bounded memory under a flood of distinct keys
        self._failures[key].append(time.monotonic())

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
