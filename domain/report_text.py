"""The monthly or quarterly report as a person reads it (``firewatch report``): pure."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from domain.report import Figures, MonthlyReport, QuarterlyReport

NONE = "-"


def counted(n: int, noun: str) -> str:
    """``1 incident``, ``2 incidents``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def duration(minutes: float | None) -> str:
    """12.5 -> ``12.5m``; 190 -> ``3.2h``; 2880 -> ``2.0d``; None -> ``-``."""
    if minutes is None:
        return NONE
    if minutes < 120:
        return f"{minutes:.1f}m"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f}h"
    return f"{minutes / 1440:.1f}d"


def share(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:.1f}%"


WIDTHS = (10, 5, 5, 4, 7, 7, 7, 7, 7, 7, 6, 8)
HEAD = ("", "Count", "Open", "FP", "MTTD", "MTTA", "MTTR", "Median", "P90", "In SLA", "Escal")


def _line(cells: tuple[str, ...]) -> str:
    padded = [
        c.ljust(w) if i == 0 else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, WIDTHS, strict=True))
    ]
    return ("  " + " ".join(padded)).rstrip()


def _row(label: str, f: Figures) -> str:
    return _line(
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
            f"{f.customer_impact_hours:g}",
        )
    )


def _table(rows: list[tuple[str, Figures]]) -> list[str]:
    return [_line((*HEAD, "Impact h")), *(_row(label, f) for label, f in rows)]


def render_report(report: MonthlyReport) -> str:
    zone = ZoneInfo(report.timezone)
    start = report.start.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    end = report.end.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    o = report.overall
    lines = [
        f"Firewatch report {report.period}: incidents opened {start} to {end} ({report.timezone})",
        "Severity is each incident's final severity. False positives count in volume, not in",
        "the times; incidents open at the end of the period count in volume, not in MTTR.",
        "",
    ]
    # A period not over yet (this month so far) has no end to be open at.
    when_open = "now" if report.as_of < report.end else "at the end"
    if report.no_incidents:
        lines.append("No incidents were opened in this period.")
    else:
        lines += [
            f"Incidents: {o.incidents} ({o.open_at_end} still open {when_open}, "
            f"{o.false_positives} false positives: {share(o.false_positive_rate)})",
            f"MTTD (detected -> opened): {duration(o.mttd_minutes)} over {o.detected_measured}"
            f" with an alert timestamp ({o.detected_without_timestamp} without one)",
            f"MTTA (opened -> acknowledged): {duration(o.mtta_minutes)} over {o.acknowledged}",
            f"MTTR (opened -> resolved): {duration(o.mttr_minutes)} over {o.resolved}"
            f" (median {duration(o.resolution_median_minutes)},"
            f" p90 {duration(o.resolution_p90_minutes)})",
            f"Detected -> resolved: {duration(o.detected_to_resolved_minutes)}",
            f"Acknowledged within the response SLA: {share(o.response_compliance)}"
            f" ({o.response_met} of {o.response_measured}; {o.response_pending} not yet due)",
            f"Escalated past the first level: {share(o.escalation_rate)};"
            f" escalated by hand: {share(o.escalated_by_hand_rate)}",
            f"Customer impact: {o.customer_impact_hours:g} hours"
            f" ({counted(o.customer_impact_reported, 'incident')} gave a figure)",
            "",
            "By severity",
            *_table([(s.value, f) for s, f in report.by_severity.items()]),
            "",
            "By service",
            *_table(list(report.by_service.items())),
        ]
    ft = report.follow_through
    if ft is not None:
        lines += [
            "",
            "Follow-through",
            f"  Post-mortems complete: {ft.postmortems_complete} of {ft.postmortems}"
            f" ({share(ft.postmortem_completion_rate)})",
            f"  Action items due: {ft.items_due}; closed on time {ft.items_closed_on_time}"
            f" ({share(ft.items_on_time_rate)}), late {ft.items_closed_late},"
            f" open {ft.items_open}",
        ]
    if not report.no_incidents:
        lines += ["", f"Pages by hour of day ({report.timezone}, by the hour the incident opened)"]
        peak = max(report.pages_by_hour) or 1
        for hour, count in enumerate(report.pages_by_hour):
            if count:
                lines.append(f"  {hour:02d}:00 {'#' * round(20 * count / peak):<20} {count}")
        lines += ["", "Noisiest alert sources (alerts per dedup key)"]
        lines += [
            f"  {s.alerts:>4}  {s.dedup_key} ({s.service}, {counted(s.incidents, 'incident')})"
            for s in report.noisiest_sources
        ]
        lines += ["", "Most incident hours (opened -> resolved, or the end of the period)"]
        lines += [f"  {s.hours:>8.1f}h  {s.service}" for s in report.incident_hours_by_service]
    if isinstance(report, QuarterlyReport):
        lines += ["", "Month by month", "  Month     Count   MTTA    MTTR  In SLA   Escal      FP"]
        lines += [
            f"  {m.month}  {m.incidents:>5} {duration(m.mtta_minutes):>6} "
            f"{duration(m.mttr_minutes):>7} {share(m.response_compliance):>7} "
            f"{share(m.escalation_rate):>7} {share(m.false_positive_rate):>7}"
            for m in report.months
        ]
    return "\n".join(lines) + "\n"
