"""Empty months, months of P3s only, bad periods, and properties over random records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.policy import Policy, Severity
from domain.records import IncidentRecord
from domain.report import (
    Figures,
    month_bounds,
    monthly_report,
    parse_month,
    parse_quarter,
    quarterly_report,
)
from tests.conftest import load_default_policy
from tests.reports.seeded import rec

POLICY: Policy = load_default_policy()


def test_an_empty_month_has_no_figures() -> None:
    report = monthly_report([], "2026-02", POLICY)
    assert report.no_incidents is True
    assert report.overall == Figures()
    assert report.overall.no_incidents is True
    assert report.overall.mttr_minutes is None and report.overall.response_compliance is None
    assert report.overall.false_positive_rate is None and report.overall.escalation_rate is None
    assert all(f == Figures() for f in report.by_severity.values())
    assert report.by_service == {}
    assert report.pages_by_hour == [0] * 24
    assert report.noisiest_sources == [] and report.incident_hours_by_service == []
    assert report.follow_through is None


def test_empty_follow_through_rates_are_none() -> None:
    from storage.postmortems import FollowThrough

    zero = FollowThrough(
        postmortems=0,
        postmortems_complete=0,
        items_due=0,
        items_closed_on_time=0,
        items_closed_late=0,
        items_open=0,
    )
    ft = monthly_report([], "2026-02", POLICY, zero).follow_through
    assert ft is not None
    assert (ft.postmortem_completion_rate, ft.items_on_time_rate) == (None, None)


def test_a_month_of_p3s_only() -> None:
    # Tue Feb 3 2026, 10:00 New York; acknowledged the next morning at 08:00 (met), and
    # Fri Feb 6 16:00 New York, acknowledged Monday 10:00 (late).
    records = [
        rec("E1", "P3", "web", "02-03 15:00", None, 22 * 60, 24 * 60),
        rec("E2", "P3", "web", "02-06 21:00", 5, 3 * 24 * 60 - 6 * 60, 3 * 24 * 60),
    ]
    report = monthly_report(records, "2026-02", POLICY)
    assert report.no_incidents is False
    for severity in (Severity.P0, Severity.P1, Severity.P2):
        assert report.by_severity[severity] == Figures()
        assert report.by_severity[severity].no_incidents is True
    p3 = report.by_severity[Severity.P3]
    assert p3 == report.overall
    assert (p3.incidents, p3.paged, p3.escalation_rate) == (2, 0, 0.0)
    assert (p3.response_met, p3.response_measured, p3.response_compliance) == (1, 2, 0.5)
    assert (p3.mttd_minutes, p3.detected_without_timestamp) == (5.0, 1)
    assert p3.mttr_minutes == 2880.0  # (1440 + 4320) / 2
    assert report.pages_by_hour == [0] * 24


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "2026-1", "26-11", "2026/11", ""])
def test_bad_months(bad: str) -> None:
    with pytest.raises(ValueError, match="2026-11"):
        parse_month(bad)


@pytest.mark.parametrize("bad", ["2026Q5", "2026Q0", "2026-Q4", "Q4", "2026"])
def test_bad_quarters(bad: str) -> None:
    with pytest.raises(ValueError, match="2026Q4"):
        parse_quarter(bad)


def test_december_ends_at_new_year_in_new_york() -> None:
    assert month_bounds("2026-12", POLICY) == (
        datetime(2026, 12, 1, 5, tzinfo=UTC),
        datetime(2027, 1, 1, 5, tzinfo=UTC),
    )


def test_resolved_exactly_at_the_end_is_still_open_at_the_end() -> None:
    # Opened Nov 30 23:00 New York (Dec 1 04:00 UTC), resolved at Dec 1 05:00 UTC exactly.
    report = monthly_report([rec("F1", "P2", "api", "12-01 04:00", 1, 5, 60)], "2026-11", POLICY)
    assert (report.overall.open_at_end, report.overall.resolved) == (1, 0)


MINUTES = st.integers(min_value=0, max_value=60 * 24 * 60)
START = datetime(2026, 10, 20, tzinfo=UTC)


@st.composite
def records(draw: st.DrawFn) -> IncidentRecord:
    opened = START + timedelta(minutes=draw(MINUTES))
    detect = draw(st.none() | st.integers(0, 600))
    ack = draw(st.none() | st.integers(0, 5000))
    resolve = draw(st.none() | st.integers(0, 10000))
    if ack is not None and resolve is not None:
        ack = min(ack, resolve)
    level = draw(st.integers(0, 4))
    return rec(
        f"H{draw(st.integers(0, 10**9))}",
        draw(st.sampled_from(["P0", "P1", "P2", "P3"])),
        draw(st.sampled_from(["api", "web", "db"])),
        opened.strftime("%m-%d %H:%M"),
        detect,
        ack,
        resolve,
        level=level,
        pages=level,
        hand=draw(st.booleans()),
        fp=draw(st.booleans()),
        impact=draw(st.none() | st.floats(0, 100)),
        alerts=draw(st.integers(1, 20)),
        key=draw(st.sampled_from(["k1", "k2", "k3", "k4", "k5", "k6", "k7"])),
    )


def _shares(f: Figures) -> list[float | None]:
    return [
        f.false_positive_rate,
        f.response_compliance,
        f.escalation_rate,
        f.escalated_by_hand_rate,
    ]


@settings(max_examples=150, deadline=None)
@given(st.lists(records(), max_size=30), st.sampled_from(["2026-10", "2026-11", "2026-12"]))
def test_properties(rows: list[IncidentRecord], month: str) -> None:
    report = monthly_report(rows, month, POLICY)
    start, end = month_bounds(month, POLICY)
    opened = [r for r in rows if start <= r.opened_at < end]
    assert report.overall.incidents == len(opened)
    assert report.no_incidents == (not opened)
    assert sum(f.incidents for f in report.by_severity.values()) == len(opened)
    assert sum(f.incidents for f in report.by_service.values()) == len(opened)
    assert sum(report.pages_by_hour) == sum(r.pages > 0 for r in opened)
    for f in [report.overall, *report.by_severity.values(), *report.by_service.values()]:
        for share in _shares(f):
            assert share is None or 0.0 <= share <= 1.0
        assert f.response_met <= f.response_measured
        assert f.resolved + f.open_at_end <= f.incidents
        if f.resolved:
            assert f.resolution_median_minutes is not None
            assert f.resolution_p90_minutes is not None
            assert f.resolution_median_minutes <= f.resolution_p90_minutes + 0.01
        else:
            assert f.mttr_minutes is None
    assert len(report.noisiest_sources) <= 5 and len(report.incident_hours_by_service) <= 5


@settings(max_examples=40, deadline=None)
@given(st.lists(records(), max_size=30))
def test_the_quarter_is_its_three_months(rows: list[IncidentRecord]) -> None:
    q = quarterly_report(rows, "2026Q4", POLICY)
    assert q.overall.incidents == sum(m.incidents for m in q.months)
