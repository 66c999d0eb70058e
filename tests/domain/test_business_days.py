"""Business days: next-business-day review starts and post-mortem slots."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path

import pytest

from domain.business_days import (
    is_business_day,
    next_business_day_start,
    postmortem_review_slot,
)
from domain.policy import BusinessHours, Policy
from domain.policy_file import parse_policy

POLICY_PATH = Path(__file__).resolve().parents[2] / "domain" / "default_policy.yaml"
H48 = timedelta(hours=48)
REVIEW = time(14, 0)


@cache
def default_policy() -> Policy:
    return parse_policy(POLICY_PATH.read_text(), "default_policy.yaml")


def hours() -> BusinessHours:
    return default_policy().business_hours


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_is_business_day() -> None:
    h = hours()
    assert is_business_day(date(2026, 1, 9), h)  # Friday
    assert not is_business_day(date(2026, 1, 10), h)  # Saturday
    assert not is_business_day(date(2026, 1, 11), h)  # Sunday
    assert not is_business_day(date(2026, 12, 25), h)  # Friday, holiday
    assert not is_business_day(date(2027, 1, 1), h)  # Friday, holiday
    assert is_business_day(date(2026, 11, 27), h)  # not listed as a holiday


def test_custom_week() -> None:
    h = BusinessHours(days=("sunday", "monday"), holidays=(date(2026, 1, 11),))
    assert not is_business_day(date(2026, 1, 11), h)  # Sunday, but a holiday
    assert is_business_day(date(2026, 1, 12), h)
    assert not is_business_day(date(2026, 1, 13), h)
    assert next_business_day_start(utc(2026, 1, 9, 12), h) == utc(2026, 1, 12, 9, 0)


# ---- next_business_day_start ------------------------------------------------------------------


def test_friday_evening_gives_monday_morning_new_york() -> None:
    # Friday 2026-01-09 18:00 EST = 23:00Z -> Monday 09:00 EST = 14:00Z.
    result = next_business_day_start(utc(2026, 1, 9, 23, 0), hours())
    assert result == utc(2026, 1, 12, 14, 0)
    assert result.tzinfo is UTC


def test_summer_uses_daylight_time() -> None:
    # Friday 2026-07-10 18:00 EDT -> Monday 09:00 EDT = 13:00Z.
    assert next_business_day_start(utc(2026, 7, 10, 22, 0), hours()) == utc(2026, 7, 13, 13, 0)


def test_local_date_not_utc_date_decides() -> None:
    # 2026-01-10T03:00Z is still Friday 22:00 in New York -> Monday.
    assert next_business_day_start(utc(2026, 1, 10, 3, 0), hours()) == utc(2026, 1, 12, 14, 0)
    # 2026-01-09T04:00Z is Thursday 23:00 in New York -> Friday.
    assert next_business_day_start(utc(2026, 1, 9, 4, 0), hours()) == utc(2026, 1, 9, 14, 0)


def test_strictly_after_the_local_date() -> None:
    # Monday 08:00 New York, before opening: still the next day.
    assert next_business_day_start(utc(2026, 1, 12, 13, 0), hours()) == utc(2026, 1, 13, 14, 0)


def test_holidays_are_skipped() -> None:
    # Thursday 2026-12-24 -> Friday 25th is a holiday -> Monday 28th.
    assert next_business_day_start(utc(2026, 12, 24, 15, 0), hours()) == utc(2026, 12, 28, 14, 0)
    # Thursday 2026-12-31 -> Friday 2027-01-01 is a holiday -> Monday 2027-01-04.
    assert next_business_day_start(utc(2026, 12, 31, 15, 0), hours()) == utc(2027, 1, 4, 14, 0)


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_business_day_start(datetime(2026, 1, 9, 18, 0), hours())


# ---- postmortem_review_slot --------------------------------------------------------------------


def test_midweek_next_business_day_at_review_time() -> None:
    # Resolved Wednesday 2026-01-07 10:00 EST -> Thursday 14:00 EST = 19:00Z.
    slot = postmortem_review_slot(utc(2026, 1, 7, 15, 0), hours(), REVIEW, H48)
    assert slot == utc(2026, 1, 8, 19, 0)
    assert slot.tzinfo is UTC


def test_thursday_afternoon_gives_friday() -> None:
    assert postmortem_review_slot(utc(2026, 1, 8, 20, 0), hours(), REVIEW, H48) == utc(
        2026, 1, 9, 19, 0
    )


def test_friday_morning_falls_back_to_same_day_slot() -> None:
    # Resolved Friday 10:00 EST: Monday 14:00 is past the 48h deadline (Sunday 10:00 EST),
    # so the latest business-day 14:00 slot within the deadline is Friday's own.
    resolved = utc(2026, 1, 9, 15, 0)
    slot = postmortem_review_slot(resolved, hours(), REVIEW, H48)
    assert slot == utc(2026, 1, 9, 19, 0)
    assert resolved < slot <= resolved + H48


def test_friday_evening_falls_back_to_the_deadline() -> None:
    # Resolved Friday 16:00 EST: no business-day 14:00 slot in (resolved, resolved + 48h].
    resolved = utc(2026, 1, 9, 21, 0)
    assert postmortem_review_slot(resolved, hours(), REVIEW, H48) == utc(2026, 1, 11, 21, 0)


def test_longer_window_keeps_monday() -> None:
    resolved = utc(2026, 1, 9, 21, 0)
    assert postmortem_review_slot(resolved, hours(), REVIEW, timedelta(hours=72)) == utc(
        2026, 1, 12, 19, 0
    )


def test_holiday_before_weekend() -> None:
    # Resolved Thursday 2026-12-24 10:00 EST: Friday is a holiday, Monday is too late,
    # Thursday 14:00 is still ahead -> same day.
    assert postmortem_review_slot(utc(2026, 12, 24, 15, 0), hours(), REVIEW, H48) == utc(
        2026, 12, 24, 19, 0
    )


def test_result_never_exceeds_the_deadline() -> None:
    h = hours()
    resolved = utc(2026, 1, 1)
    while resolved < utc(2026, 2, 1):
        slot = postmortem_review_slot(resolved, h, REVIEW, H48)
        assert resolved < slot <= resolved + H48
        resolved += timedelta(hours=3, minutes=7)


def test_negative_window_is_refused() -> None:
    with pytest.raises(ValueError):
        postmortem_review_slot(utc(2026, 1, 7), hours(), REVIEW, timedelta(hours=-1))
