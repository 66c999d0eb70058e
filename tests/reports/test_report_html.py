"""The monthly and quarterly reports as HTML pages: their figures, the quarter's months,
and charts that are real PNG images."""

from __future__ import annotations

import base64
import io
import re

from matplotlib.image import imread

from domain.report import monthly_report, quarterly_report
from domain.report_text import duration, share
from starter.report_html import render_html
from storage.postmortems import FollowThrough
from tests.conftest import load_default_policy
from tests.reports.seeded import ALL

PNG = re.compile(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def test_the_seeded_month_has_five_charts() -> None:
    follow = FollowThrough(
        postmortems=5,
        postmortems_complete=4,
        items_due=10,
        items_closed_on_time=6,
        items_closed_late=2,
        items_open=2,
    )
    page = render_html(monthly_report(ALL, "2026-11", load_default_policy(), follow))
    assert page.startswith("<!doctype html>")
    assert "<title>Firewatch report 2026-11</title>" in page
    assert "Incidents: 38 (4 open at the end, 2 false positives, 5.3%)" in page
    assert "Post-mortems complete: 4 of 5 (80.0%)" in page
    images = PNG.findall(page)
    assert [name for name, _ in images] == [
        "Incidents by final severity",
        "MTTA and MTTR",
        "Pages by hour of day",
        "Most incident hours",
        "Noisiest alert sources",
    ]
    for _, data in images:
        raw = base64.b64decode(data)
        assert raw.startswith(b"\x89PNG\r\n\x1a\n")
        pixels = imread(io.BytesIO(raw), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 300


def test_an_empty_month_has_no_charts() -> None:
    page = render_html(monthly_report([], "2026-02", load_default_policy()))
    assert "No incidents were opened in this period." in page
    assert PNG.findall(page) == []


def test_names_are_escaped() -> None:
    from tests.reports.seeded import rec

    odd = rec("Z1", "P2", "<script>", "02-03 15:00", 1, 5, 30, level=1, pages=1, key="<b>")
    page = render_html(monthly_report([odd], "2026-02", load_default_policy()))
    assert "<script>" not in page and "&lt;script&gt;" in page


def month_rows(page: str) -> list[list[str]]:
    """The cells of the quarter page's month-by-month table, header first."""
    found = re.search(r'<table id="months">(.*?)</table>', page)
    assert found is not None
    rows = re.findall(r"<tr>(.*?)</tr>", found.group(1))
    return [re.findall(r"<t[hd]>(.*?)</t[hd]>", row) for row in rows]


def test_the_quarter_page_shows_the_trend_month_by_month() -> None:
    report = quarterly_report(ALL, "2026Q4", load_default_policy())
    page = render_html(report)
    assert "<title>Firewatch report 2026Q4</title>" in page
    assert "Incidents: 40 (" in page
    assert month_rows(page) == [
        ["Month", "Count", "FP", "MTTA", "MTTR", "In SLA", "Escal", "Impact h"],
        *(
            [
                m.month,
                str(m.incidents),
                share(m.false_positive_rate),
                duration(m.mtta_minutes),
                duration(m.mttr_minutes),
                share(m.response_compliance),
                share(m.escalation_rate),
                f"{m.customer_impact_hours:g}",
            ]
            for m in report.months
        ),
    ]
    assert [row[:2] for row in month_rows(page)[1:]] == [
        ["2026-10", "1"],
        ["2026-11", "38"],
        ["2026-12", "1"],
    ]
    # The month table comes before the charts, its trend chart with it.
    images = PNG.findall(page)
    assert [name for name, _ in images] == [
        "Trend over the quarter",
        "Incidents by final severity",
        "MTTA and MTTR",
        "Pages by hour of day",
        "Most incident hours",
        "Noisiest alert sources",
    ]
    trend = imread(io.BytesIO(base64.b64decode(images[0][1])), format="png")
    assert trend.shape[1] > trend.shape[0] > 100


def test_an_empty_quarter_has_its_months_and_no_charts() -> None:
    page = render_html(quarterly_report([], "2026Q1", load_default_policy()))
    assert "No incidents were opened in this period." in page
    assert [row[:2] for row in month_rows(page)[1:]] == [
        ["2026-01", "0"],
        ["2026-02", "0"],
        ["2026-03", "0"],
    ]
    assert PNG.findall(page) == []
