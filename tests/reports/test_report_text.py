"""``firewatch report`` as a person reads it: golden texts of the seeded November 2026 and of
the fourth quarter (tests/reports/seeded.py).

FIREWATCH_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/reports/test_report_text.py
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.report import monthly_report, quarterly_report
from domain.report_text import counted, duration, render_report, share
from storage.postmortems import FollowThrough
from tests.conftest import load_default_policy
from tests.reports.seeded import ALL, moved, years_ahead

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
REGENERATE = os.environ.get("FIREWATCH_REGEN_GOLDEN") == "1"
FOLLOW = FollowThrough(
    postmortems=5,
    postmortems_complete=4,
    items_due=10,
    items_closed_on_time=6,
    items_closed_late=2,
    items_open=2,
)


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGENERATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_the_month() -> None:
    text = render_report(monthly_report(ALL, "2026-11", load_default_policy(), FOLLOW))
    _check("monthly_report.txt", text)


def test_the_quarter() -> None:
    text = render_report(quarterly_report(ALL, "2026Q4", load_default_policy(), FOLLOW))
    _check("quarterly_report.txt", text)


def test_an_empty_month_says_so() -> None:
    text = render_report(monthly_report([], "2026-02", load_default_policy()))
    assert "No incidents were opened in this period." in text
    assert "By severity" not in text


@pytest.mark.parametrize(
    ("minutes", "shown"),
    [(None, "-"), (0.0, "0.0m"), (119.9, "119.9m"), (120.0, "2.0h"), (2880.0, "2.0d")],
)
def test_durations(minutes: float | None, shown: str) -> None:
    assert duration(minutes) == shown


def test_shares() -> None:
    assert (share(None), share(0.7143), share(1.0)) == ("-", "71.4%", "100.0%")


@pytest.mark.parametrize(
    ("n", "shown"), [(0, "0 incidents"), (1, "1 incident"), (38, "38 incidents")]
)
def test_counts(n: int, shown: str) -> None:
    assert counted(n, "incident") == shown


def test_a_seeded_month_moved_by_calendar_cycles_reads_the_same() -> None:
    policy = load_default_policy()
    years = years_ahead(datetime(2031, 5, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    assert years == 28
    assert years_ahead(datetime(2026, 11, 29, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)) == 0
    now = render_report(monthly_report(ALL, "2026-11", policy, FOLLOW))
    later = render_report(monthly_report(moved(ALL, years), "2054-11", policy, FOLLOW))
    assert "2054-" not in now and "Incidents: 38" in now
    assert later == now.replace("2026-", "2054-")
