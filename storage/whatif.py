"""What the policy what-if reads (``domain.whatif``): the period's incident records and
every run-time override that touched it, removed ones included (with when they were
removed), so a page is replayed to whoever covered the role at that moment."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from domain.policy import Policy
from domain.report import month_bounds, parse_month, quarter_bounds
from domain.whatif import StoredOverride, WhatIfReport, whatif
from storage.database import Database, timestamp
from storage.records import IncidentRecords
from storage.schedules import _OVERRIDE, _override
from storage.schema import schedule_overrides

_s = schedule_overrides.c
# An incident opened near the period's end pages after it: overrides that far on count.
_REACH = timedelta(days=7)


def overrides_during(database: Database, start: datetime, end: datetime) -> list[StoredOverride]:
    """Overrides overlapping ``[start, end)``, oldest first, whether removed since or not."""
    query = (
        select(*_OVERRIDE, _s.removed_at)
        .where(_s.starts_at < timestamp(end), _s.ends_at > timestamp(start))
        .order_by(_s.id)
    )
    with database.read() as db:
        rows = db.execute(query).all()
    return [
        StoredOverride(
            override=_override(row[:-1]),
            removed_at=datetime.fromisoformat(row[-1]) if row[-1] else None,
        )
        for row in rows
    ]


def period_bounds(period: str, policy: Policy) -> tuple[datetime, datetime]:
    """A month (``2026-11``) or a quarter (``2026Q4``) of the team's calendar, as the
    reports read them; ValueError saying what a period looks like otherwise."""
    try:
        parse_month(period)
    except ValueError:
        try:
            return quarter_bounds(period, policy)
        except ValueError:
            raise ValueError(
                f"period must be a month (2026-11) or a quarter (2026Q4), got {period!r}"
            ) from None
    return month_bounds(period, policy)


def build_whatif(
    database: Database, period: str, actual: Policy, proposed: Policy, now: datetime
) -> WhatIfReport:
    """Replay ``period``'s incidents under ``proposed`` beside ``actual`` (read only)."""
    start, end = period_bounds(period, actual)
    records = IncidentRecords(database).overlapping(start, end)
    stored = overrides_during(database, start, end + _REACH)
    label = period.strip().upper() if "q" in period.lower() else period.strip()
    return whatif(records, label, start, end, actual, proposed, stored, as_of=now)
