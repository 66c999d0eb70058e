"""A seeded November 2026 (America/New_York, DST ends Sunday Nov 1 at 06:00 UTC): 38
incidents opened in the month, plus one opened on Oct 31 local time and one on Dec 1 local
time (both inside the UTC month boundaries' reach, outside the team's month).

Every figure the tests expect is worked out by hand from this table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.policy import Severity
from domain.records import IncidentRecord


def at(text: str) -> datetime:
    """``11-03 14:00`` -> 2026-11-03 14:00 UTC."""
    month_day, clock = text.split()
    month, day = month_day.split("-")
    hour, minute = clock.split(":")
    return datetime(2026, int(month), int(day), int(hour), int(minute), tzinfo=UTC)


def rec(
    name: str,
    severity: str,
    service: str,
    opened: str,
    detect: int | None,
    ack: int | None,
    resolve: int | None,
    *,
    level: int = 0,
    pages: int = 0,
    hand: bool = False,
    fp: bool = False,
    impact: float | None = None,
    alerts: int = 1,
    key: str | None = None,
) -> IncidentRecord:
    """Minutes: ``detect`` before opening (None: no alert timestamp), ``ack`` and
    ``resolve`` after opening (None: not yet)."""
    start = at(opened)
    return IncidentRecord(
        incident_id=name,
        workflow_id=f"wf-{name}",
        service=service,
        source="test",
        dedup_key=key or f"{service}-{name}",
        summary=f"{name} on {service}",
        severity_at_open=Severity.P2,
        severity=Severity(severity),
        detected_at=start - timedelta(minutes=detect) if detect is not None else start,
        detected_from_alert=detect is not None,
        opened_at=start,
        acknowledged_at=start + timedelta(minutes=ack) if ack is not None else None,
        acknowledged_by="alice" if ack is not None else None,
        resolved_at=start + timedelta(minutes=resolve) if resolve is not None else None,
        resolved_by="alice" if resolve is not None else None,
        status="resolved" if resolve is not None else "triggered",
        max_level_paged=level,
        pages=pages,
        escalated_by_hand=hand,
        false_positive=fp,
        customer_impact_hours=impact,
        alert_count=alerts,
    )


P0 = [
    rec("A1", "P0", "checkout", "11-03 14:00", 5, 10, 120, level=1, pages=1, impact=2.0,
        alerts=3, key="checkout-5xx"),
    rec("A2", "P0", "checkout", "11-10 02:30", 3, 20, 240, level=2, pages=2, impact=4.0,
        alerts=5, key="checkout-5xx"),
    rec("A3", "P0", "database", "11-17 16:00", 4, 12, 60, level=1, pages=1, alerts=2,
        key="db-down"),
    rec("A4", "P0", "checkout", "11-24 09:00", 8, 14, 180, level=1, pages=1, impact=1.5,
        alerts=4, key="checkout-5xx"),
]  # fmt: skip

P1 = [
    rec("B1", "P1", "search", "11-02 15:00", 2, 5, 30, level=1, pages=1, key="search-latency"),
    rec("B2", "P1", "search", "11-05 20:00", None, 15, 90, level=1, pages=1, alerts=2,
        key="search-latency"),
    rec("B3", "P1", "api", "11-08 07:00", 6, 25, 60, level=2, pages=2, hand=True,
        key="api-errors"),
    rec("B4", "P1", "api", "11-12 13:00", 1, 3, 45, level=1, pages=1, alerts=6, key="api-errors"),
    rec("B5", "P1", "search", "11-15 23:00", 4, None, 20, level=2, pages=2, key="search-latency"),
    rec("B6", "P1", "api", "11-20 18:00", 2, 8, 120, level=1, pages=1, impact=0.5, alerts=2,
        key="api-errors"),
    rec("B7", "P1", "api", "11-26 12:00", None, 10, 30, level=1, pages=1, key="api-latency"),
    # Opened Nov 30 17:00 New York, resolved Dec 1 07:00 UTC: open at the end of November.
    rec("B8", "P1", "search", "11-30 22:00", 5, 7, 540, level=1, pages=1, impact=3.0, alerts=3,
        key="search-latency"),
]  # fmt: skip

P2 = [
    # 01:30 EDT and 01:30 EST: the same local hour twice on the night DST ends.
    rec("C1", "P2", "database", "11-01 05:30", 10, 30, 120, level=1, pages=1, alerts=2,
        key="db-replication-lag"),
    rec("C2", "P2", "database", "11-01 06:30", 10, 40, 180, level=1, pages=1, alerts=4,
        key="db-replication-lag"),
    rec("C3", "P2", "batch", "11-04 14:00", 15, 50, 240, level=1, pages=1, key="batch-failed"),
    rec("C4", "P2", "batch", "11-06 10:00", 5, 70, 300, level=2, pages=2, alerts=2,
        key="batch-failed"),
    rec("C5", "P2", "api", "11-09 16:00", 2, 5, 10, level=1, pages=1, fp=True, key="api-probe"),
    rec("C6", "P2", "api", "11-13 19:00", 20, 20, 60, level=1, pages=1, alerts=3,
        key="api-errors"),
    rec("C7", "P2", "database", "11-16 12:00", None, 45, 200, level=1, pages=1, impact=1.0,
        alerts=7, key="db-replication-lag"),
    rec("C8", "P2", "batch", "11-19 03:00", 1, None, 30, level=1, pages=1, fp=True, alerts=2,
        key="batch-probe"),
    rec("C9", "P2", "api", "11-22 21:00", 10, 60, 360, level=1, pages=1, key="api-latency"),
    rec("C10", "P2", "database", "11-25 15:00", 5, 15, 90, level=1, pages=1, key="db-disk"),
    rec("C11", "P2", "batch", "11-27 17:00", 31, 35, 150, level=1, pages=1, alerts=5,
        key="batch-failed"),
    # Never acknowledged, still open: escalated by hand to the team lead.
    rec("C12", "P2", "api", "11-29 11:00", 10, None, None, level=3, pages=3, hand=True,
        alerts=2, key="api-errors"),
]  # fmt: skip

P3 = [
    rec("D1", "P3", "web", "11-02 15:00", 60, 1320, 2880),
    rec("D2", "P3", "web", "11-06 20:00", None, 3930, 4320),  # Fri 15:00 -> Mon 08:30 ack
    rec("D3", "P3", "docs", "11-10 15:00", 30, 1440, 1500),  # ack Wed 10:00: late
    rec("D4", "P3", "web", "11-11 14:00", 20, 60, 600, impact=0.0),
    rec("D5", "P3", "web", "11-13 22:00", 10, 3900, 4000),  # Fri 17:00 -> Mon 10:00: late
    rec("D6", "P3", "docs", "11-14 12:00", 5, 120, 240),  # Saturday
    rec("D7", "P3", "docs", "11-17 04:00", 15, 540, 600),  # Mon 23:00 local -> Tue 08:00
    rec("D8", "P3", "web", "11-18 16:00", None, None, 300),  # resolved, never acknowledged
    rec("D9", "P3", "web", "11-20 15:00", 45, 30, 90),
    rec("D10", "P3", "web", "11-21 10:00", 5, 2880, 3000),  # Sat -> Mon 05:00 local
    rec("D11", "P3", "docs", "11-24 15:00", 25, 100, 1440),
    rec("D12", "P3", "docs", "11-26 16:00", 5, 1500, 1600),  # Thu -> Fri 12:00 local: late
    rec("D13", "P3", "web", "11-28 15:00", 10, None, None),  # open; due Mon Nov 30 09:00
    rec("D14", "P3", "web", "11-30 23:00", 5, None, None),  # open; due Tue Dec 1 09:00
]

OUTSIDE = [
    rec("X1", "P1", "api", "11-01 03:30", 1, 5, 20, level=1, pages=1),  # Oct 31 23:30 EDT
    rec("X2", "P2", "api", "12-01 06:00", 1, 5, 30, level=1, pages=1),  # Dec 1 01:00 EST
]

NOVEMBER = [*P0, *P1, *P2, *P3]
ALL = [*OUTSIDE, *NOVEMBER]


# Every 28 years (from 1901 to 2099) the calendar repeats: the same weekdays, the same
# leap years, and New York's DST rule gives the same dates. Tests that must wait for the
# seeded month's end on a time-skipping server move it this many years ahead once the real
# date has passed it, and every figure stays the same.
CALENDAR_CYCLE = 28


def years_ahead(now: datetime, needed_after: datetime) -> int:
    """Whole calendar cycles that put ``needed_after`` after ``now`` (0 while it is)."""
    years = 0
    while needed_after.replace(year=needed_after.year + years) <= now:
        years += CALENDAR_CYCLE
    return years


def moved(records: list[IncidentRecord], years: int) -> list[IncidentRecord]:
    """``records`` with every time ``years`` later (a multiple of ``CALENDAR_CYCLE``)."""

    def later(value: object) -> object:
        if isinstance(value, datetime):
            return value.replace(year=value.year + years)
        if isinstance(value, list):
            return [later(v) for v in value]
        return value

    return [
        r.model_copy(update={name: later(getattr(r, name)) for name in type(r).model_fields})
        for r in records
    ]
