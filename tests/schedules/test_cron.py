"""Cron expressions and timezones as schedules check them: whatever the text, an accepted
expression or a typed refusal; an accepted one really never fires more often than the minimum
interval (its next ticks are measured); ticks follow the timezone across daylight saving."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pasar_core.errors import ValidationFailed
from pasar_core.schedules.cron import (
    InvalidCron,
    InvalidTimezone,
    ScheduleTooFrequent,
    checked_cron,
    shortest_gap_s,
)

CODES = {"INVALID_CRON", "INVALID_TIMEZONE", "SCHEDULE_TOO_FREQUENT"}

FIELD = st.one_of(
    st.just("*"),
    st.integers(-2, 70).map(str),
    st.tuples(st.integers(0, 59), st.integers(0, 59)).map(lambda p: f"{p[0]}-{p[1]}"),
    st.tuples(st.sampled_from(["*", "0-30", "5"]), st.integers(0, 31)).map(
        lambda p: f"{p[0]}/{p[1]}"
    ),
    st.lists(st.integers(0, 59), min_size=1, max_size=4).map(lambda v: ",".join(map(str, v))),
    st.sampled_from(["L", "?", "H", "MON", "jan", "1#2", "5L", "W", "", "**", "\x00", "%"]),
)
EXPRESSIONS = st.one_of(
    st.lists(FIELD, min_size=4, max_size=8).map(" ".join),
    st.sampled_from(["@hourly", "@daily", "@reboot", "@every 1s", "@yearly", "@midnight"]),
    st.text(max_size=60),
)
ZONES = st.one_of(
    st.sampled_from(["UTC", "Europe/Paris", "Asia/Kathmandu", "America/St_Johns", "Etc/GMT+12",
                     "../../etc/passwd", "/etc/localtime", "Europe/../UTC", "utc", "", "Nowhere"]),
    st.text(max_size=40),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(expression=EXPRESSIONS, timezone=ZONES, minimum=st.sampled_from([1, 60, 300]))
def test_any_text_is_a_checked_schedule_or_a_typed_refusal(
    expression: str, timezone: str, minimum: int
) -> None:
    try:
        cron = checked_cron(expression, timezone, min_interval_s=minimum)
    except ValidationFailed as refused:
        assert refused.code in CODES, refused
        assert refused.status == 422
        return
    # Accepted: the next ticks really are at least `minimum` apart, and in the future.
    now = datetime.now(UTC)
    moment, ticks = now, []
    for _ in range(40):
        moment = cron.next_after(moment)
        ticks.append(moment)
    assert ticks[0] > now
    for earlier, later in itertools.pairwise(ticks):
        assert (later - earlier).total_seconds() >= minimum, (expression, earlier, later)


@pytest.mark.parametrize(
    ("expression", "gap"),
    [("* * * * *", 60), ("*/5 * * * *", 300), ("0 9 * * 1-5", 3600), ("59 0,1 * * *", 3600),
     ("0,59 * * * *", 60), ("* * * * * */10", 10), ("0 */2 * * *", 3600), ("@hourly", 3600)],
)  # fmt: skip
def test_the_shortest_gap_of_an_expression(expression: str, gap: int) -> None:
    assert shortest_gap_s(expression) == gap


def test_refusals_name_what_is_wrong() -> None:
    with pytest.raises(InvalidCron):
        checked_cron("0 0 31 2 *", "UTC", min_interval_s=60)  # never comes
    with pytest.raises(InvalidCron):
        checked_cron("* * * * * * 2030", "UTC", min_interval_s=60)  # no year field
    with pytest.raises(InvalidTimezone):
        checked_cron("0 9 * * *", "../../../etc/passwd", min_interval_s=60)
    with pytest.raises(ScheduleTooFrequent) as frequent:
        checked_cron("* * * * * 0,30", "UTC", min_interval_s=60)
    assert frequent.value.details == {"min_interval_s": 60, "shortest_gap_s": 30}


@pytest.mark.parametrize("expression", ["* * * * * R", "R * * * *", "0 H * * *", "r 9 * * *",
                                        "0 9 * * R(1-5)"])  # fmt: skip
def test_random_and_hashed_fields_are_refused(expression: str) -> None:
    """croniter draws R and H again at every parse: the minimum interval could not hold."""
    with pytest.raises(InvalidCron, match="random and hashed"):
        checked_cron(expression, "UTC", min_interval_s=60)


def test_month_and_day_names_are_not_taken_for_random_fields() -> None:
    assert checked_cron("0 9 * MAR,APR THU,FRI", "UTC", min_interval_s=60)


def test_ticks_keep_local_time_across_daylight_saving() -> None:
    cron = checked_cron("0 9 * * *", "Europe/Paris", min_interval_s=60)
    before = cron.next_after(datetime(2026, 3, 27, 12, tzinfo=UTC))  # 28 March, UTC+1
    after = cron.next_after(before)  # 29 March: summer time, UTC+2
    assert (before.hour, after.hour) == (8, 7)
    latest, upcoming = cron.latest_due(datetime(2026, 3, 31, 12, tzinfo=UTC))
    assert latest == datetime(2026, 3, 31, 7, tzinfo=UTC)
    assert upcoming == datetime(2026, 4, 1, 7, tzinfo=UTC)
