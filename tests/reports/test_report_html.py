"""The monthly report as an HTML page: its figures, and charts that are real PNG images."""

from __future__ import annotations

import base64
import io
import re

from matplotlib.image import imread

from domain.report import monthly_report
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
