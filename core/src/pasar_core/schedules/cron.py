"""Cron expressions in an IANA timezone (croniter, zoneinfo): checked once when a schedule is
made, then asked for ticks. Five fields (minute hour day month weekday), or six with seconds
last; `@hourly`-style nicknames too. Ticks are computed in the schedule's timezone (so
`0 9 * * *` stays 09:00 local across daylight-saving changes) and stored in UTC."""

from __future__ import annotations

import functools
import itertools
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from croniter import CroniterError, croniter

from pasar_core.errors import ValidationFailed

MAX_EXPRESSION_CHARS = 200
HOUR_S = 3600


class InvalidCron(ValidationFailed):
    code = "INVALID_CRON"


class InvalidTimezone(ValidationFailed):
    code = "INVALID_TIMEZONE"


class ScheduleTooFrequent(ValidationFailed):
    code = "SCHEDULE_TOO_FREQUENT"


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA timezone `name` (only names of the tz database: never a path)."""
    if name not in _zone_names():
        raise InvalidTimezone(
            f"{name[:64]!r} is not an IANA timezone (like UTC or Europe/Paris)",
            details={"timezone": name[:64]},
        )
    return zoneinfo.ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class Cron:
    """A checked expression in its timezone."""

    expression: str
    timezone: str

    def _iterator(self, start: datetime) -> Any:
        return croniter(self.expression, start.astimezone(zone(self.timezone)))

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after `moment`, in UTC."""
        tick: datetime = self._iterator(moment).get_next(datetime)
        return tick.astimezone(UTC)

    def ticks_after(self, moment: datetime) -> Iterator[datetime]:
        """The ticks strictly after `moment`, in order, in UTC (one iterator for them all)."""
        iterator = self._iterator(moment)
        while True:
            tick: datetime = iterator.get_next(datetime)
            yield tick.astimezone(UTC)

    def latest_due(self, now: datetime) -> tuple[datetime, datetime]:
        """(the latest tick at or before `now`, the first tick after `now`), in UTC."""
        upcoming = self.next_after(now)
        latest: datetime = self._iterator(upcoming).get_prev(datetime)
        return latest.astimezone(UTC), upcoming


def _fields(expression: str) -> list[list[Any]]:
    try:
        return list(croniter(expression).expanded)
    except (CroniterError, ValueError, TypeError, KeyError, IndexError, OverflowError):
        raise InvalidCron(
            f"{expression[:MAX_EXPRESSION_CHARS]!r} is not a cron expression (five fields: "
            "minute hour day month weekday, or six with seconds last)",
        ) from None


_RANDOM = re.compile(r"(?<![a-z])[rh](?![a-z])", re.IGNORECASE)
"""croniter's `R` (random) and `H` (hashed) tokens, not the letters of MAR, THU or FRI."""


def _values(field: list[Any], size: int) -> list[int]:
    return list(range(size)) if field == ["*"] else sorted({int(value) for value in field})


def shortest_gap_s(expression: str) -> int:
    """The shortest time two ticks of `expression` can be apart. Every matching hour has the
    same minutes and seconds, so the gaps within one hour, and from an hour's last tick to the
    next hour's first when two matching hours follow each other, are all there are."""
    fields = _fields(expression)
    try:
        return _shortest_gap(fields)
    except (ValueError, TypeError):
        raise InvalidCron(
            f"{expression[:MAX_EXPRESSION_CHARS]!r} is not a cron expression"
        ) from None


def _shortest_gap(fields: list[list[Any]]) -> int:
    seconds = _values(fields[5], 60) if len(fields) == 6 else [0]
    minutes, hours = _values(fields[0], 60), _values(fields[1], 24)
    offsets = sorted(minute * 60 + second for minute in minutes for second in seconds)
    gaps = [later - earlier for earlier, later in itertools.pairwise(offsets)]
    hour_set = set(hours)
    if any((hour + 1) % 24 in hour_set for hour in hour_set):
        gaps.append(offsets[0] + HOUR_S - offsets[-1])
    return min(gaps, default=HOUR_S)


def checked_cron(expression: str, timezone: str, *, min_interval_s: int) -> Cron:
    """The expression if it is valid, fires at all, and never fires more often than every
    `min_interval_s` seconds; else a typed refusal (INVALID_CRON, INVALID_TIMEZONE,
    SCHEDULE_TOO_FREQUENT)."""
    expression = " ".join(expression.split())
    if not expression or len(expression) > MAX_EXPRESSION_CHARS or not expression.isprintable():
        raise InvalidCron(f"a cron expression has 1 to {MAX_EXPRESSION_CHARS} printable characters")
    zone(timezone)
    if _RANDOM.search(expression):  # croniter draws them again at every parse
        raise InvalidCron(
            f"{expression!r}: random and hashed fields (R, H) are not supported; name the times"
        )
    fields = _fields(expression)
    if len(fields) not in (5, 6):
        raise InvalidCron("a cron expression has five fields, or six with seconds last")
    cron = Cron(expression, timezone)
    try:  # `0 0 31 2 *` parses but never comes
        cron.next_after(datetime.now(UTC))
    except (CroniterError, ValueError, OverflowError):
        raise InvalidCron(f"{expression!r} never fires") from None
    gap = shortest_gap_s(expression)
    if gap < min_interval_s:
        raise ScheduleTooFrequent(
            f"{expression!r} fires every {gap} s at times; schedules fire at most every "
            f"{min_interval_s} s",
            details={"min_interval_s": min_interval_s, "shortest_gap_s": gap},
        )
    return cron


def ticks_between(cron: Cron, start: datetime, end: datetime, cap: int = 100) -> int:
    """How many ticks fall in (start, end], counted up to `cap` (the log says "at least"
    then): the ones a late fire skips. One iterator walks them, so a long outage costs at most
    `cap` steps on the event loop."""
    count = 0
    for moment in cron.ticks_after(start):
        if moment > end or count >= cap:
            break
        count += 1
    return count
