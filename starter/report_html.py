"""A monthly or quarterly report as one HTML page with its charts
(``GET /reports/monthly/{month}.html``, ``GET /reports/quarterly/{quarter}.html``).

The charts are ``activities.report_charts``' (matplotlib, no pyplot), embedded as base64
PNG, so the page is one self-contained file. A quarter's page adds its months: a table of
each month's main figures and the trend chart.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from activities import report_charts
from domain.report import Figures, MonthlyReport, QuarterlyReport
from domain.report_text import duration, share


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def charts(report: MonthlyReport) -> dict[str, str]:
    """Chart title -> base64 PNG; none for a period without incidents."""
    return {name: _b64(png) for name, png in report_charts.charts(report).items()}


def _cells(tag: str, values: Sequence[str]) -> str:
    return "".join(f"<{tag}>{html.escape(v)}</{tag}>" for v in values)


def _table(rows: Sequence[tuple[str, Figures]]) -> str:
    head = ("", "Count", "Open", "FP", "MTTD", "MTTA", "MTTR", "Median", "P90", "In SLA", "Escal")
    body = [
        "<tr>"
        + _cells(
            "td",
            (
                label,
                str(f.incidents),
                str(f.open_at_end),
                str(f.false_positives),
                duration(f.mttd_minutes),
                duration(f.mtta_minutes),
                duration(f.mttr_minutes),
                duration(f.resolution_median_minutes),
                duration(f.resolution_p90_minutes),
                share(f.response_compliance),
                share(f.escalation_rate),
            ),
        )
        + "</tr>"
        for label, f in rows
    ]
    return f"<table><tr>{_cells('th', head)}</tr>{''.join(body)}</table>"


def _img(name: str, data: str) -> list[str]:
    return [
        f"<h2>{html.escape(name)}</h2>",
        f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">',
    ]


def _months(report: QuarterlyReport) -> list[str]:
    """The quarter's trend: each month's main figures, then the chart of them."""
    head = ("Month", "Count", "FP", "MTTA", "MTTR", "In SLA", "Escal", "Impact h")
    rows = [
        "<tr>"
        + _cells(
            "td",
            (
                m.month,
                str(m.incidents),
                share(m.false_positive_rate),
                duration(m.mtta_minutes),
                duration(m.mttr_minutes),
                share(m.response_compliance),
                share(m.escalation_rate),
                f"{m.customer_impact_hours:g}",
            ),
        )
        + "</tr>"
        for m in report.months
    ]
    parts = [
        f"<h2>{report_charts.TREND_CHART}</h2>",
        f'<table id="months"><tr>{_cells("th", head)}</tr>{"".join(rows)}</table>',
    ]
    if not report.no_incidents:
        data = _b64(report_charts.trend(report))
        parts.append(f'<img alt="Trend over the quarter" src="data:image/png;base64,{data}">')
    return parts


def render_html(report: MonthlyReport) -> str:
    o = report.overall
    title = f"Firewatch report {report.period}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{padding:.2em .6em;text-align:right}"
        "td:first-child{text-align:left}img{max-width:100%}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Incidents opened in the period, in {html.escape(report.timezone)}; figures by"
        " final severity. False positives count in volume, not in the times; incidents open"
        " at the end of the period count in volume, not in MTTR.</p>",
    ]
    if report.no_incidents:
        parts.append("<p><strong>No incidents were opened in this period.</strong></p>")
    else:
        parts += [
            "<ul>",
            f"<li>Incidents: {o.incidents} ({o.open_at_end} open at the end,"
            f" {o.false_positives} false positives, {share(o.false_positive_rate)})</li>",
            f"<li>MTTD {duration(o.mttd_minutes)}, MTTA {duration(o.mtta_minutes)},"
            f" MTTR {duration(o.mttr_minutes)}</li>",
            f"<li>Acknowledged within the response SLA: {share(o.response_compliance)}</li>",
            f"<li>Escalated: {share(o.escalation_rate)}; customer impact:"
            f" {o.customer_impact_hours:g} hours</li>",
            "</ul>",
            "<h2>By severity</h2>",
            _table([(s.value, f) for s, f in report.by_severity.items()]),
            "<h2>By service</h2>",
            _table(list(report.by_service.items())),
        ]
    if isinstance(report, QuarterlyReport):
        parts += _months(report)
    ft = report.follow_through
    if ft is not None:
        parts += [
            "<h2>Follow-through</h2>",
            f"<p>Post-mortems complete: {ft.postmortems_complete} of {ft.postmortems}"
            f" ({share(ft.postmortem_completion_rate)}). Action items due: {ft.items_due},"
            f" closed on time {ft.items_closed_on_time} ({share(ft.items_on_time_rate)}),"
            f" late {ft.items_closed_late}, open {ft.items_open}.</p>",
        ]
    for name, png in charts(report).items():
        parts += _img(name, png)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
