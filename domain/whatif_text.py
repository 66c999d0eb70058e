"""``firewatch whatif`` as plain text: the summary, then incident by incident."""

from __future__ import annotations

from domain.whatif import Compliance, IncidentWhatIf, SimPage, WhatIfReport

_CHANGE = {"further": "escalates further", "less_far": "escalates less far", "same": "same"}


def _compliance(c: Compliance) -> str:
    if c.compliance is None:
        return "n/a (nothing measured)"
    return f"{c.compliance:.1%} ({c.met}/{c.measured} met, {c.pending} pending)"


def _page(p: SimPage) -> str:
    what = f"L{p.level}" if p.level is not None else "no progress"
    night = " (out of hours)" if p.out_of_hours else ""
    return f"+{p.minutes:g}m {p.person} ({p.role.value}, {what}){night}"


def _pages(pages: list[SimPage]) -> str:
    return "; ".join(_page(p) for p in pages) or "nobody paged"


def _incident(d: IncidentWhatIf) -> list[str]:
    ack = (
        f"acked +{(d.acknowledged_at - d.opened_at).total_seconds() / 60:g}m"
        f" by {d.acknowledged_by or 'unknown'}"
        if d.acknowledged_at is not None
        else "never acked"
    )
    lines = [
        f"{d.incident_id} {d.severity.value} {d.service} opened"
        f" {d.opened_at:%Y-%m-%d %H:%M} UTC, {ack}: level {d.actual_level} ->"
        f" {d.proposed_level} ({_CHANGE[d.change]})",
        f"  actual:   {_pages(d.actual)}",
        f"  proposed: {_pages(d.proposed)}",
    ]
    lines += [f"  note: {n}" for n in d.notes]
    return lines


def render_whatif(report: WhatIfReport, *, details: bool = True) -> str:
    r = report
    lines = [
        f"Policy what-if for {r.period} ({r.start:%Y-%m-%d %H:%M} to"
        f" {r.end:%Y-%m-%d %H:%M} UTC; out of hours per {r.timezone} business hours)",
        f"Incidents replayed: {r.incidents} (nobody was paged, no workflow ran)",
        "",
        "                    actual  proposed",
        f"Pages               {r.pages_actual:>6}  {r.pages_proposed:>8}",
        f"Out-of-hours pages  {r.out_of_hours_actual:>6}  {r.out_of_hours_proposed:>8}",
        f"Escalates further: {r.escalated_further}; less far: {r.escalated_less_far};"
        f" same: {r.unchanged}",
        f"Response compliance: {_compliance(r.compliance_actual)} ->"
        f" {_compliance(r.compliance_proposed)}",
        "",
        "Pages per person (out of hours): actual -> proposed",
    ]
    lines += [
        f"  {p.person:<12} {p.actual} ({p.actual_out_of_hours}) ->"
        f" {p.proposed} ({p.proposed_out_of_hours})"
        for p in r.people
    ] or ["  nobody paged"]
    if r.differs_from_record:
        lines += [
            "",
            "The replay under the current policy differs from the record for: "
            + ", ".join(r.differs_from_record),
        ]
    if r.updates_unknown:
        lines.append(
            f"{r.updates_unknown} incident(s) predate status-update times: no-progress pages"
            " not replayed for them"
        )
    if details and r.details:
        lines += ["", "Incidents:"]
        for d in r.details:
            lines += _incident(d)
    lines += ["", "Assumptions:"] + [f"  - {a}" for a in r.assumptions]
    return "\n".join(lines)
