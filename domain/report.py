"""Monthly and quarterly incident and on-call metrics (issue 14): pure code over records.

Membership and definitions (README "Metrics and reports" says the same):

* A period is a month (``2026-11``) or a quarter (``2026Q4``) of the team's calendar: from
  local midnight on its first day to local midnight after its last day, in
  ``policy.business_hours.timezone`` (November 2026 in New York is 04:00 UTC Nov 1 to
  05:00 UTC Dec 1). An incident belongs to the period it was OPENED in.
* Severity is the incident's final (or current) severity, not the one it opened with.
* Still open at the end of the period (not resolved, or resolved after the end): counted
  in volume, ``open_at_end`` and incident hours (up to the end), never in the resolution
  figures (MTTR, detected to resolved, median, p90).
* False positives count in volume, the false-positive rate, escalation, pages and alert
  sources; they are left out of every timing figure (MTTD, MTTA, MTTR, detected to
  resolved, median, p90, response compliance, incident hours).
* Durations are in minutes, rounded to 2 decimals; shares are in [0, 1], rounded to 4.
  A figure with nothing to measure is None (never a division by zero).
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from domain.business_days import next_business_day_start
from domain.policy import Policy, Severity
from domain.records import IncidentRecord

TOP = 5
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})[Qq]([1-4])$")


class FollowThroughCounts(Protocol):
    """What ``storage.postmortems.follow_through`` returns (read only)."""

    @property
    def postmortems(self) -> int: ...
    @property
    def postmortems_complete(self) -> int: ...
    @property
    def items_due(self) -> int: ...
    @property
    def items_closed_on_time(self) -> int: ...
    @property
    def items_closed_late(self) -> int: ...
    @property
    def items_open(self) -> int: ...


class Figures(BaseModel):
    """The figures of one group of incidents (all, one severity, one service)."""

    incidents: int = 0
    no_incidents: bool = True
    open_at_end: int = 0
    false_positives: int = 0
    false_positive_rate: float | None = None
    # Detected -> opened, over incidents whose alert carried a timestamp.
    mttd_minutes: float | None = None
    detected_measured: int = 0
    detected_without_timestamp: int = 0
    # Opened -> first acknowledgement.
    mtta_minutes: float | None = None
    acknowledged: int = 0
    # Opened -> resolved, over incidents resolved before the end of the period.
    mttr_minutes: float | None = None
    resolved: int = 0
    detected_to_resolved_minutes: float | None = None
    resolution_median_minutes: float | None = None
    resolution_p90_minutes: float | None = None
    customer_impact_hours: float = 0.0
    customer_impact_reported: int = 0
    response_compliance: float | None = None
    response_measured: int = 0
    response_met: int = 0
    response_pending: int = 0
    escalation_rate: float | None = None
    escalated_by_hand_rate: float | None = None
    paged: int = 0


class FollowThrough(BaseModel):
    postmortems: int
    postmortems_complete: int
    postmortem_completion_rate: float | None
    items_due: int
    items_closed_on_time: int
    items_closed_late: int
    items_open: int
    items_on_time_rate: float | None


class AlertSource(BaseModel):
    dedup_key: str
    service: str
    alerts: int
    incidents: int


class ServiceHours(BaseModel):
    service: str
    hours: float


class MonthTrend(BaseModel):
    month: str
    incidents: int
    false_positive_rate: float | None
    mtta_minutes: float | None
    mttr_minutes: float | None
    response_compliance: float | None
    escalation_rate: float | None
    customer_impact_hours: float


class MonthlyReport(BaseModel):
    period: str
    start: datetime
    end: datetime
    timezone: str
    as_of: datetime
    severity_basis: Literal["final"] = "final"
    page_time_proxy: Literal["opened_at"] = "opened_at"
    no_incidents: bool
    overall: Figures
    by_severity: dict[Severity, Figures]
    by_service: dict[str, Figures]
    follow_through: FollowThrough | None = None
    pages_by_hour: list[int]
    noisiest_sources: list[AlertSource]
    incident_hours_by_service: list[ServiceHours]


class QuarterlyReport(MonthlyReport):
    months: list[MonthTrend]


# -- periods -----------------------------------------------------------------------------


def parse_month(text: str) -> tuple[int, int]:
    """``2026-11`` -> (2026, 11); ValueError otherwise."""
    found = _MONTH.match(text.strip())
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise ValueError(f"month must look like 2026-11 (YYYY-MM, month 01-12), got {text!r}")
    return int(found.group(1)), int(found.group(2))


def parse_quarter(text: str) -> tuple[int, int]:
    """``2026Q4`` -> (2026, 4); ValueError otherwise."""
    found = _QUARTER.match(text.strip())
    if not found:
        raise ValueError(f"quarter must look like 2026Q4 (YYYY, Q, 1-4), got {text!r}")
    return int(found.group(1)), int(found.group(2))


def _local_midnight(day: date, zone: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _month_start(year: int, month: int) -> date:
    return date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def month_bounds(month: str, policy: Policy) -> tuple[datetime, datetime]:
    """[start, end) of ``month`` in the team's zone, as UTC instants."""
    year, m = parse_month(month)
    zone = policy.business_hours.timezone
    return (
        _local_midnight(_month_start(year, m), zone),
        _local_midnight(_month_start(year, m + 1), zone),
    )


def quarter_months(quarter: str) -> list[str]:
    year, q = parse_quarter(quarter)
    return [f"{year}-{m:02d}" for m in range(3 * q - 2, 3 * q + 1)]


def quarter_bounds(quarter: str, policy: Policy) -> tuple[datetime, datetime]:
    months = quarter_months(quarter)
    return month_bounds(months[0], policy)[0], month_bounds(months[-1], policy)[1]


# -- figures -----------------------------------------------------------------------------


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _p90(values: Sequence[float]) -> float | None:
    """Nearest rank: the ceil(0.9 n)-th smallest value."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[math.ceil(0.9 * len(ordered)) - 1], 2)


def response_deadline(record: IncidentRecord, policy: Policy) -> datetime | None:
    """When the first acknowledgement was due: the severity's ``response_sla`` after
    opening; for a next-business-day severity without one (P3), the start of the next
    business day after the opening's local date. None: the severity has no target."""
    sev = policy.for_severity(record.severity)
    if sev.response_sla is not None:
        return record.opened_at + sev.response_sla
    if sev.next_business_day_review:
        return next_business_day_start(record.opened_at, policy.business_hours)
    return None


def _resolved_by(record: IncidentRecord, end: datetime) -> datetime | None:
    return (
        record.resolved_at if record.resolved_at is not None and record.resolved_at < end else None
    )


def figures(
    records: Sequence[IncidentRecord], policy: Policy, end: datetime, as_of: datetime
) -> Figures:
    """The figures of ``records`` (all opened in the period ending at ``end``)."""
    if not records:
        return Figures()
    real = [r for r in records if not r.false_positive]
    detect = [_minutes(r.opened_at - r.detected_at) for r in real if r.detected_from_alert]
    ack = [_minutes(r.acknowledged_at - r.opened_at) for r in real if r.acknowledged_at is not None]
    resolved = [(r, at) for r in real if (at := _resolved_by(r, end)) is not None]
    resolve = [_minutes(at - r.opened_at) for r, at in resolved]
    detect_resolve = [_minutes(at - r.detected_at) for r, at in resolved if r.detected_from_alert]
    met = measured = pending = 0
    for r in real:
        deadline = response_deadline(r, policy)
        if deadline is None:
            continue
        if r.acknowledged_at is not None:
            measured += 1
            met += r.acknowledged_at <= deadline
        elif r.resolved_at is not None or deadline < as_of:
            measured += 1  # resolved without an ack, or still open past the deadline
        else:
            pending += 1
    impacts = [r.customer_impact_hours for r in records if r.customer_impact_hours is not None]
    n = len(records)
    fps = n - len(real)
    return Figures(
        incidents=n,
        no_incidents=False,
        open_at_end=sum(_resolved_by(r, end) is None for r in records),
        false_positives=fps,
        false_positive_rate=_share(fps, n),
        mttd_minutes=_mean(detect),
        detected_measured=len(detect),
        detected_without_timestamp=sum(not r.detected_from_alert for r in real),
        mtta_minutes=_mean(ack),
        acknowledged=len(ack),
        mttr_minutes=_mean(resolve),
        resolved=len(resolve),
        detected_to_resolved_minutes=_mean(detect_resolve),
        resolution_median_minutes=round(statistics.median(resolve), 2) if resolve else None,
        resolution_p90_minutes=_p90(resolve),
        customer_impact_hours=round(sum(impacts), 2),
        customer_impact_reported=len(impacts),
        response_compliance=_share(met, measured),
        response_measured=measured,
        response_met=met,
        response_pending=pending,
        escalation_rate=_share(sum(r.max_level_paged > 1 for r in records), n),
        escalated_by_hand_rate=_share(sum(r.escalated_by_hand for r in records), n),
        paged=sum(r.pages > 0 for r in records),
    )


def _follow_through(counts: FollowThroughCounts | None) -> FollowThrough | None:
    if counts is None:
        return None
    return FollowThrough(
        postmortems=counts.postmortems,
        postmortems_complete=counts.postmortems_complete,
        postmortem_completion_rate=_share(counts.postmortems_complete, counts.postmortems),
        items_due=counts.items_due,
        items_closed_on_time=counts.items_closed_on_time,
        items_closed_late=counts.items_closed_late,
        items_open=counts.items_open,
        items_on_time_rate=_share(counts.items_closed_on_time, counts.items_due),
    )


def _grouped(
    records: Iterable[IncidentRecord], key: Callable[[IncidentRecord], str]
) -> dict[str, list[IncidentRecord]]:
    groups: dict[str, list[IncidentRecord]] = defaultdict(list)
    for r in records:
        groups[key(r)].append(r)
    return dict(sorted(groups.items()))


def _noisiest(records: Sequence[IncidentRecord]) -> list[AlertSource]:
    alerts: Counter[str] = Counter()
    incidents: Counter[str] = Counter()
    service: dict[str, str] = {}
    for r in records:
        alerts[r.dedup_key] += r.alert_count
        incidents[r.dedup_key] += 1
        service.setdefault(r.dedup_key, r.service)
    ranked = sorted(alerts, key=lambda k: (-alerts[k], k))[:TOP]
    return [
        AlertSource(dedup_key=k, service=service[k], alerts=alerts[k], incidents=incidents[k])
        for k in ranked
    ]


def _incident_hours(records: Sequence[IncidentRecord], end: datetime) -> list[ServiceHours]:
    """Opened -> resolved (or ``end``: the end of the period, or ``as_of`` when earlier),
    real incidents, by service: top 5."""
    minutes: dict[str, float] = defaultdict(float)
    for r in records:
        if not r.false_positive:
            minutes[r.service] += max(0.0, _minutes((_resolved_by(r, end) or end) - r.opened_at))
    ranked = sorted(minutes, key=lambda s: (-minutes[s], s))[:TOP]
    return [ServiceHours(service=s, hours=round(minutes[s] / 60, 2)) for s in ranked]


def _pages_by_hour(records: Sequence[IncidentRecord], zone: str) -> list[int]:
    """Paged incidents by the local hour they opened at (the record keeps no page times)."""
    hours = [0] * 24
    for r in records:
        if r.pages > 0:
            hours[r.opened_at.astimezone(ZoneInfo(zone)).hour] += 1
    return hours


def _in_period(
    records: Iterable[IncidentRecord], start: datetime, end: datetime
) -> list[IncidentRecord]:
    return sorted((r for r in records if start <= r.opened_at < end), key=lambda r: r.opened_at)


def _report(
    period: str,
    records: Iterable[IncidentRecord],
    start: datetime,
    end: datetime,
    policy: Policy,
    follow_through: FollowThroughCounts | None,
    as_of: datetime | None,
) -> MonthlyReport:
    at = as_of or end
    mine = _in_period(records, start, end)
    by_severity = {
        s: figures([r for r in mine if r.severity == s], policy, end, at) for s in Severity
    }
    return MonthlyReport(
        period=period,
        start=start,
        end=end,
        timezone=policy.business_hours.timezone,
        as_of=at,
        no_incidents=not mine,
        overall=figures(mine, policy, end, at),
        by_severity=by_severity,
        by_service={
            s: figures(rs, policy, end, at) for s, rs in _grouped(mine, lambda r: r.service).items()
        },
        follow_through=_follow_through(follow_through),
        pages_by_hour=_pages_by_hour(mine, policy.business_hours.timezone),
        noisiest_sources=_noisiest(mine),
        incident_hours_by_service=_incident_hours(mine, min(end, at)),
    )


def monthly_report(
    records: Iterable[IncidentRecord],
    month: str,
    policy: Policy,
    follow_through: FollowThroughCounts | None = None,
    as_of: datetime | None = None,
) -> MonthlyReport:
    """The report of ``month`` (``2026-11``). ``records`` may hold incidents of other
    periods (they are left out); ``as_of`` (default: the end of the month) decides whether
    an unacknowledged, still-open incident's response deadline has passed."""
    start, end = month_bounds(month, policy)
    return _report(month, records, start, end, policy, follow_through, as_of)


def quarterly_report(
    records: Iterable[IncidentRecord],
    quarter: str,
    policy: Policy,
    follow_through: FollowThroughCounts | None = None,
    as_of: datetime | None = None,
) -> QuarterlyReport:
    """The same figures over a quarter (``2026Q4``), plus the main ones month by month."""
    rows = list(records)
    start, end = quarter_bounds(quarter, policy)
    whole = _report(quarter.upper(), rows, start, end, policy, follow_through, as_of)
    months = []
    for month in quarter_months(quarter):
        at = None if as_of is None else min(as_of, month_bounds(month, policy)[1])
        o = monthly_report(rows, month, policy, as_of=at).overall
        months.append(
            MonthTrend(
                month=month,
                incidents=o.incidents,
                false_positive_rate=o.false_positive_rate,
                mtta_minutes=o.mtta_minutes,
                mttr_minutes=o.mttr_minutes,
                response_compliance=o.response_compliance,
                escalation_rate=o.escalation_rate,
                customer_impact_hours=o.customer_impact_hours,
            )
        )
    return QuarterlyReport(**whole.model_dump(), months=months)
