"""The report's charts as PNG bytes, drawn with matplotlib (the Agg canvas through
``Figure``, no pyplot: no global state, safe in the API's and the worker's threads).

Pure functions of a report: the API's HTML pages (``starter.report_html``) embed them, and
the monthly report's activity uploads the main one to Slack. Importing this module
imports matplotlib, so callers import it only when they draw.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from domain.report import MonthlyReport, QuarterlyReport

BAR = "#c0392b"
BAR2 = "#2c3e50"
# The chart the monthly Slack post carries (README "Metrics and reports"): volume.
MAIN_CHART = "Incidents by final severity"
TREND_CHART = "Month by month"


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return buffer.getvalue()


def bars(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    ylabel: str,
    *,
    horizontal: bool = False,
) -> bytes:
    fig = Figure(figsize=(7.0, 3.0))
    ax = fig.add_subplot()
    if horizontal:
        ax.barh(list(labels), list(values), color=BAR2)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
    else:
        ax.bar(list(labels), list(values), color=BAR)
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    return png(fig)


def _paired(
    ax: Axes, labels: list[str], first: list[float], second: list[float], names: tuple[str, str]
) -> None:
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], first, width=0.4, label=names[0], color=BAR2)
    ax.bar([i + 0.2 for i in x], second, width=0.4, label=names[1], color=BAR)
    ax.set_xticks(list(x), labels)
    ax.legend()
    ax.spines[["top", "right"]].set_visible(False)


def times_by_severity(report: MonthlyReport) -> bytes:
    fig = Figure(figsize=(7.0, 3.0))
    ax = fig.add_subplot()
    _paired(
        ax,
        [s.value for s in report.by_severity],
        [(f.mtta_minutes or 0) / 60 for f in report.by_severity.values()],
        [(f.mttr_minutes or 0) / 60 for f in report.by_severity.values()],
        ("MTTA", "MTTR"),
    )
    ax.set_ylabel("hours")
    ax.set_title("Mean time to acknowledge and to resolve, by final severity")
    return png(fig)


def main_chart(report: MonthlyReport) -> bytes | None:
    """Incidents by final severity: the chart the monthly Slack post carries. None for a
    period without incidents (there is nothing to draw)."""
    if report.no_incidents:
        return None
    sev = report.by_severity
    return bars(
        MAIN_CHART, [s.value for s in sev], [f.incidents for f in sev.values()], "incidents"
    )


def trend(report: QuarterlyReport) -> bytes:
    """The quarter month by month: volume, and MTTA and MTTR in hours."""
    fig = Figure(figsize=(9.0, 3.0))
    volume, times = fig.subplots(1, 2)
    labels = [m.month for m in report.months]
    volume.bar(labels, [m.incidents for m in report.months], color=BAR)
    volume.set_ylabel("incidents")
    volume.set_title("Incidents opened, month by month")
    volume.spines[["top", "right"]].set_visible(False)
    _paired(
        times,
        labels,
        [(m.mtta_minutes or 0) / 60 for m in report.months],
        [(m.mttr_minutes or 0) / 60 for m in report.months],
        ("MTTA", "MTTR"),
    )
    times.set_ylabel("hours")
    times.set_title("MTTA and MTTR, month by month")
    return png(fig)


def charts(report: MonthlyReport) -> dict[str, bytes]:
    """Chart title -> PNG, in the page's order; none for a period without incidents (a
    quarter's trend is :func:`trend`, shown with its month-by-month table)."""
    main = main_chart(report)
    if main is None:
        return {}
    return {
        MAIN_CHART: main,
        "MTTA and MTTR": times_by_severity(report),
        "Pages by hour of day": bars(
            f"Paged incidents by the hour they opened ({report.timezone})",
            [f"{h:02d}" for h in range(24)],
            report.pages_by_hour,
            "incidents",
        ),
        "Most incident hours": bars(
            "Services with the most incident hours",
            [s.service for s in report.incident_hours_by_service],
            [s.hours for s in report.incident_hours_by_service],
            "hours",
            horizontal=True,
        ),
        "Noisiest alert sources": bars(
            "Noisiest alert sources (alerts per dedup key)",
            [s.dedup_key for s in report.noisiest_sources],
            [s.alerts for s in report.noisiest_sources],
            "alerts",
            horizontal=True,
        ),
    }
