"""Login throttling: failures per key within a sliding window."""

from __future__ import annotations

import pytest
from pasar_core.accounts.throttle import LoginThrottle, TooManyAttempts


def test_refuses_after_max_failures_and_success_resets() -> None:
    throttle = LoginThrottle(max_failures=3, window_s=60)
    for _ in range(3):
        throttle.check("a@b.co")
        throttle.failed("a@b.co")
    with pytest.raises(TooManyAttempts) as caught:
        throttle.check("a@b.co")
    assert 0 < caught.value.retry_after_s <= 61
    throttle.check("other@b.co")  # other accounts are not affected
    throttle.succeeded("a@b.co")
    throttle.check("a@b.co")


def test_failures_leave_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("pasar_core.accounts.throttle.time.monotonic", lambda: clock[0])
    throttle = LoginThrottle(max_failures=2, window_s=10)
    throttle.failed("k")
    throttle.failed("k")
    with pytest.raises(TooManyAttempts):
        throttle.check("k")
    clock[0] += 10.5
    throttle.check("k")
