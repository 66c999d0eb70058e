"""The monthly report as one HTML page with its charts (``GET /reports/monthly/{month}.html``).

Charts are drawn with matplotlib (the Agg canvas, no pyplot: no global state, safe in the
API's worker threads) and embedded as base64 PNG, so the page is one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

from matplotlib.figure import Figure

from domain.report import Figures, MonthlyReport
from domain.report_text import duration, share

_BAR = "#c0392b"
_BAR2 = "#2c3e50"


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _bars(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    ylabel: str,
    *,
    horizontal: bool = False,
) -> str:
    fig = Figure(figsize=(7.0, 3.0))
    ax = fig.add_subplot()
    if horizontal:
        ax.barh(list(labels), list(values), color=_BAR2)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
    else:
        ax.bar(list(labels), list(values), color=_BAR)
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _times_by_severity(report: MonthlyReport) -> str:
    fig = Figure(figsize=(7.0, 3.0))
    ax = fig.add_subplot()
    labels = [s.value for s in report.by_severity]
    x = range(len(labels))
    mtta = [(f.mtta_minutes or 0) / 60 for f in report.by_severity.values()]
    mttr = [(f.mttr_minutes or 0) / 60 for f in report.by_severity.values()]
    ax.bar([i - 0.2 for i in x], mtta, width=0.4, label="MTTA", color=_BAR2)
    ax.bar([i + 0.2 for i in x], mttr, width=0.4, label="MTTR", color=_BAR)
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("hours")
    ax.set_title("Mean time to acknowledge and to resolve, by final severity")
    ax.legend()
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def charts(report: MonthlyReport) -> dict[str, str]:
    """Chart title -> base64 PNG; none for a period without incidents."""
    if report.no_incidents:
        return {}
    sev = report.by_severity
    return {
        "Incidents by final severity": _bars(
            "Incidents by final severity",
            [s.value for s in sev],
            [f.incidents for f in sev.values()],
            "incidents",
        ),
        "MTTA and MTTR": _times_by_severity(report),
        "Pages by hour of day": _bars(
            f"Paged incidents by the hour they opened ({report.timezone})",
            [f"{h:02d}" for h in range(24)],
            report.pages_by_hour,
            "incidents",
        ),
        "Most incident hours": _bars(
            "Services with the most incident hours",
            [s.service for s in report.incident_hours_by_service],
            [s.hours for s in report.incident_hours_by_service],
            "hours",
            horizontal=True,
        ),
        "Noisiest alert sources": _bars(
            "Noisiest alert sources (alerts per dedup key)",
            [s.dedup_key for s in report.noisiest_sources],
            [s.alerts for s in report.noisiest_sources],
            "alerts",
            horizontal=True,
        ),
    }


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
        parts += [
            f"<h2>{html.escape(name)}</h2>",
            f'<img alt="{html.escape(name)}" src="data:image/png;base64,{png}">',
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
