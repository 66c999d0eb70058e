"""Business-day arithmetic: P3 next-business-day reviews and post-mortem scheduling.

All calendar reasoning happens on local dates in ``BusinessHours.timezone``; results are
aware datetimes in UTC. Wall-clock times that fall in a DST gap resolve with ``fold=0``
(the offset in force before the change), as :mod:`zoneinfo` does by default.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.policy import WEEKDAYS, BusinessHours

_ONE_DAY = timedelta(days=1)


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"instant must be timezone-aware, got naive {at.isoformat()}")


def _at_local(day: date, wall: time, hours: BusinessHours) -> datetime:
    """``wall`` o'clock on the local ``day`` in the business time zone, as UTC."""
    return datetime.combine(day, wall, tzinfo=ZoneInfo(hours.timezone)).astimezone(UTC)


def local_date(at: datetime, hours: BusinessHours) -> date:
    """The calendar date of the aware instant ``at`` in the business time zone."""
    _require_aware(at)
    return at.astimezone(ZoneInfo(hours.timezone)).date()


def is_business_day(day: date, hours: BusinessHours) -> bool:
    """``day``'s weekday is one of ``hours.days`` and ``day`` is not a holiday."""
    return WEEKDAYS[day.weekday()] in hours.days and day not in hours.holidays


def next_business_day(day: date, hours: BusinessHours) -> date:
    """The first business day strictly after ``day``."""
    # Terminates: ``hours.days`` is never empty and the holiday list is finite.
    candidate = day + _ONE_DAY
    while not is_business_day(candidate, hours):
        candidate += _ONE_DAY
    return candidate


def next_business_day_start(at: datetime, hours: BusinessHours) -> datetime:
    """Start of the next business day strictly after ``at``'s local date, in UTC.

    ``hours.start`` local time on the first business day after the local date of ``at``:
    Friday 18:00 New York gives Monday 09:00 New York (14:00 UTC in winter). Monday 08:00
    also gives Tuesday 09:00 -- the review is always on a later day than the incident.
    Holidays are skipped.
    """
    return _at_local(next_business_day(local_date(at, hours), hours), hours.start, hours)


def postmortem_review_slot(
    resolved_at: datetime, hours: BusinessHours, review_time: time, within: timedelta
) -> datetime:
    """When to hold the post-mortem review of an incident resolved at ``resolved_at``.

    The preferred slot is ``review_time`` (local, in ``hours.timezone``) on the first
    business day after ``resolved_at``'s local date: the team gets the rest of the day
    to gather facts, and the meeting lands in business hours.

    The seed requires the review "within 48 hours" (``within``), and that wins over the
    preference: when the preferred slot falls after ``resolved_at + within`` -- e.g.
    resolved on a Friday with ``within`` = 48h, where Monday 14:00 is too late -- the
    review takes the latest business-day ``review_time`` slot that is strictly after
    ``resolved_at`` and no later than the deadline (in practice the same day, when the
    incident was resolved before ``review_time``). If no such slot exists, the review
    is set at exactly ``resolved_at + within``, which may be outside business hours: the
    deadline is kept and the team can move the meeting by hand.

    Returns an aware UTC datetime. ``within`` must not be negative.
    """
    if within < timedelta(0):
        raise ValueError("within must not be negative")
    _require_aware(resolved_at)
    deadline = resolved_at + within
    first_day = local_date(resolved_at, hours)

    preferred = _at_local(next_business_day(first_day, hours), review_time, hours)
    if preferred <= deadline:
        return preferred

    latest: datetime | None = None
    day = first_day
    last_day = local_date(deadline, hours)
    while day <= last_day:
        if is_business_day(day, hours):
            slot = _at_local(day, review_time, hours)
            if resolved_at < slot <= deadline:
                latest = slot
        day += _ONE_DAY
    if latest is not None:
        return latest
    return deadline.astimezone(UTC)
