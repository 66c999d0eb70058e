"""The policy what-if (issue 14): replay a period's incidents under a proposed policy.

Pure. Each incident of the period is replayed twice from its record, once under the
current policy ("actual") and once under the proposed one, with the same code the
incident workflow runs: :func:`domain.escalation.plan` decides what is due, and
:func:`domain.transitions.carry_out` applies it to the incident; nothing is sent.

What the replay takes from the record, as facts that do not change with the policy:
opening, first acknowledgement (and who), status updates, mitigation and resolution times.
People at each page time come from the policy's rota with the run-time overrides that were
in force then (:class:`Oncall`).

What it cannot know (README "Policy what-if"):

* Severity changes: the record keeps the severity at opening and the final one, not when it
  changed. The replay uses the final severity from opening (the reports' basis too).
* Escalate-now by hand and maintenance holds: their times are not recorded; not replayed.
* Status updates of records written before they were kept (``status_updates`` None): the
  no-progress pages of those incidents are left out of both columns, and counted.
* Acknowledgements are the real ones: a page the proposed ladder sends earlier does not
  make anyone acknowledge sooner. An ack at the very instant a page falls due stops it
  (the same instant counts as in time, as in response compliance); the first page, at
  opening, always goes out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from domain import rotation, transitions
from domain.business_days import is_business_day, next_business_day_start
from domain.escalation import StepKind, plan
from domain.incident import IncidentState, LadderRun, Status
from domain.policy import BusinessHours, Person, Policy, Role, Roster, Severity
from domain.records import IncidentRecord
from domain.report import figures
from domain.schedule import ScheduledOverride

# A replay stops after this many plans: a runaway would be a bug, not a long incident.
_MAX_ROUNDS = 100_000

PageKind = Literal["page", "no_progress"]
Change = Literal["further", "less_far", "same"]


@dataclass(frozen=True)
class StoredOverride:
    """A run-time override as stored, with when (if ever) it was removed."""

    override: ScheduledOverride
    removed_at: datetime | None = None

    def in_force(self, at: datetime) -> bool:
        o = self.override
        removed = self.removed_at is not None and self.removed_at <= at
        return o.created_at <= at and o.start <= at < o.end and not removed


class Oncall:
    """Who held a role at an instant: ``roster``'s rota with the run-time overrides in
    force then laid over it, as ``OncallActivities.resolve_oncall`` looks it up."""

    def __init__(self, roster: Roster, stored: Sequence[StoredOverride] = ()) -> None:
        self.roster = roster
        self.stored = sorted(stored, key=lambda s: s.override.id)  # later ones win

    def __call__(self, role: Role, at: datetime) -> Person:
        live = [s.override.as_override() for s in self.stored if s.in_force(at)]
        return rotation.holder(rotation.with_overrides(self.roster, live), role, at)


Resolver = Callable[[Role, datetime], Person]


class SimPage(BaseModel):
    """One page the replay sends: a ladder level, or a no-progress page."""

    at: datetime
    minutes: float  # after the incident opened
    person: str
    role: Role
    kind: PageKind
    level: int | None = None  # ladder level, 1-based (None: a no-progress page)
    channel: str | None = None  # the person's first contact method (sms, voice, ...)
    out_of_hours: bool


class IncidentWhatIf(BaseModel):
    incident_id: str
    service: str
    severity: Severity
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    actual: list[SimPage]
    proposed: list[SimPage]
    actual_level: int  # highest ladder level paged, 1-based; 0: nobody
    proposed_level: int
    recorded_level: int  # what the record says happened
    change: Change
    notes: list[str] = Field(default_factory=list)


class PersonPages(BaseModel):
    person: str
    actual: int
    proposed: int
    actual_out_of_hours: int
    proposed_out_of_hours: int


class Compliance(BaseModel):
    """The monthly report's response compliance (``domain.report.figures``)."""

    compliance: float | None
    met: int
    measured: int
    pending: int


class WhatIfReport(BaseModel):
    period: str
    start: datetime
    end: datetime
    as_of: datetime
    timezone: str  # business hours: what "out of hours" means
    incidents: int
    pages_actual: int
    pages_proposed: int
    out_of_hours_actual: int
    out_of_hours_proposed: int
    escalated_further: int
    escalated_less_far: int
    unchanged: int
    people: list[PersonPages]
    compliance_actual: Compliance
    compliance_proposed: Compliance
    differs_from_record: list[str]  # the replay under the current policy disagrees with it
    updates_unknown: int  # records without status update times: no-progress not replayed
    assumptions: list[str]
    details: list[IncidentWhatIf]


ASSUMPTIONS = [
    "Acknowledgement, status update, mitigation and resolution times are the real ones;"
    " an earlier page does not make anyone acknowledge sooner.",
    "An acknowledgement at the instant a page falls due stops that page; the first page,"
    " at opening, always goes out.",
    "Each incident is replayed at its final severity from opening (severity changes are"
    " not timed in the records).",
    "Escalate-now by hand and maintenance holds are not replayed (their times are not recorded).",
    "Incidents whose records predate status-update times have no no-progress pages in"
    " either column.",
    "Out of hours: outside the current policy's business hours (days, start-end, holidays,"
    " in its time zone), for both columns.",
]


def out_of_hours(at: datetime, hours: BusinessHours) -> bool:
    """``at`` falls outside business hours: not a business day, or outside start-end."""
    local = at.astimezone(ZoneInfo(hours.timezone))
    if not is_business_day(local.date(), hours):
        return True
    return not hours.start <= local.time().replace(tzinfo=None) < hours.end


def _events(record: IncidentRecord) -> list[tuple[datetime, int, str]]:
    """The record's facts in time order; at the same instant: ack, update, mitigate, resolve."""
    found: list[tuple[datetime, int, str]] = []
    if record.acknowledged_at is not None:
        found.append((record.acknowledged_at, 0, "ack"))
    found += [(at, 1, "update") for at in record.status_updates or ()]
    if record.mitigated_at is not None:
        found.append((record.mitigated_at, 2, "mitigate"))
    if record.resolved_at is not None:
        found.append((record.resolved_at, 3, "resolve"))
    return sorted(found)


def _apply(
    state: IncidentState, policy: Policy, record: IncidentRecord, what: str, at: datetime
) -> None:
    """One fact of the record, applied as the workflow's transitions apply it."""
    if what == "ack":
        who = record.acknowledged_by or "unknown"
        if policy.roster.person(who) is None:  # a tool: the paged person keeps it
            transitions.acknowledge_from_source(state, policy, who, at)
        else:
            transitions.acknowledge_as(state, policy, who, at)
    elif what == "update":
        state.last_update_at = at
        if policy.for_severity(state.severity).stakeholder_deadline is not None:
            state.stakeholders_informed_at = state.stakeholders_informed_at or at
    elif what == "mitigate":
        state.mitigated_at = at
        transitions.set_status(state, at, Status.MITIGATING, None)
    else:
        transitions.resolve_from_source(state, policy, record.resolved_by or "unknown", at)


def _opened(record: IncidentRecord, policy: Policy) -> IncidentState:
    """The incident as the workflow opens it (the ladder anchored at opening)."""
    state = IncidentState(
        workflow_id=record.workflow_id,
        incident_id=record.incident_id,
        dedup_key=record.dedup_key,
        service=record.service,
        summary=record.summary,
        severity=record.severity,
        severity_at_open=record.severity_at_open,
        opened_at=record.opened_at,
        ladder=LadderRun(anchor=record.opened_at),
        replanned_at=record.opened_at,
    )
    if policy.for_severity(record.severity).next_business_day_review:
        # The workflow looks the review date up when the incident opens.
        state.review_at = next_business_day_start(record.opened_at, policy.business_hours)
    return state


def replay(
    record: IncidentRecord,
    policy: Policy,
    oncall: Resolver,
    until: datetime,
    hours: BusinessHours,
) -> list[SimPage]:
    """The pages ``record``'s incident gets under ``policy``, up to ``until``: the
    workflow's loop (plan, carry out what is due, re-plan, sleep until the next step or
    the next fact) with the record's facts as the people's actions."""
    sp = policy.for_severity(record.severity)
    state = _opened(record, policy)
    events = _events(record)
    with_updates = record.status_updates is not None
    pages: list[SimPage] = []
    now = record.opened_at
    for round_ in range(_MAX_ROUNDS):
        # The workflow pages at opening before it can take anyone's acknowledgement.
        while round_ > 0 and events and events[0][0] <= now:
            moment, _order, what = events.pop(0)
            _apply(state, policy, record, what, moment)
        if not state.is_open:
            return pages
        current = plan(state, sp, now)
        for step in current.due:
            state.fired.append(step.key)
            if step.kind in (StepKind.PROPOSAL_EXPIRY, StepKind.PAGING_RELEASE):
                continue  # no mitigations or maintenance holds in a replay
            role = transitions.person_needed(step, state, policy)
            person = oncall(role, step.at) if role is not None else None
            transitions.carry_out(step, state, policy, person)  # its messages: dropped
            page = step.kind == StepKind.PAGE
            if (
                person is not None
                and step.role is not None
                and (page or (step.kind == StepKind.NO_PROGRESS and with_updates))
            ):
                pages.append(
                    SimPage(
                        at=step.at,
                        minutes=round((step.at - record.opened_at) / timedelta(minutes=1), 2),
                        person=person.name,
                        role=step.role,
                        kind="page" if page else "no_progress",
                        level=step.level + 1 if page and step.level is not None else None,
                        channel=person.contact_order[0] if person.contact_order else None,
                        out_of_hours=out_of_hours(step.at, hours),
                    )
                )
        if current.due:
            state.fired = [key for key in state.fired if key in current.live_keys]
            continue  # re-plan at the same instant, as the workflow does
        upcoming = [t for t in (current.next.at if current.next else None,) if t is not None]
        if events:
            upcoming.append(events[0][0])
        if not upcoming or min(upcoming) > until:
            return pages
        now = min(upcoming)
    raise RuntimeError(f"{record.incident_id}: the replay did not settle")


def _level(pages: Iterable[SimPage]) -> int:
    return max((p.level for p in pages if p.level is not None), default=0)


def _notes(record: IncidentRecord, actual_level: int) -> list[str]:
    notes = []
    if actual_level != record.max_level_paged:
        notes.append(
            f"recorded highest level {record.max_level_paged}, replayed {actual_level}"
            " under the current policy"
        )
    if record.severity_at_open != record.severity:
        notes.append(
            f"opened as {record.severity_at_open.value}, replayed as {record.severity.value}"
        )
    if record.escalated_by_hand:
        notes.append("escalated by hand: not replayed")
    if record.status_updates is None:
        notes.append("status update times not recorded: no-progress pages not replayed")
    return notes


def compare(
    record: IncidentRecord,
    actual: Policy,
    proposed: Policy,
    actual_oncall: Resolver,
    proposed_oncall: Resolver,
    until: datetime,
) -> IncidentWhatIf:
    hours = actual.business_hours
    before = replay(record, actual, actual_oncall, until, hours)
    after = replay(record, proposed, proposed_oncall, until, hours)
    lb, la = _level(before), _level(after)
    change: Change = "further" if la > lb else "less_far" if la < lb else "same"
    return IncidentWhatIf(
        incident_id=record.incident_id,
        service=record.service,
        severity=record.severity,
        opened_at=record.opened_at,
        acknowledged_at=record.acknowledged_at,
        acknowledged_by=record.acknowledged_by,
        resolved_at=record.resolved_at,
        actual=before,
        proposed=after,
        actual_level=lb,
        proposed_level=la,
        recorded_level=record.max_level_paged,
        change=change,
        notes=_notes(record, lb),
    )


def _compliance(
    records: Sequence[IncidentRecord], policy: Policy, end: datetime, as_of: datetime
) -> Compliance:
    f = figures(records, policy, end, as_of)
    return Compliance(
        compliance=f.response_compliance,
        met=f.response_met,
        measured=f.response_measured,
        pending=f.response_pending,
    )


def _people(details: Sequence[IncidentWhatIf]) -> list[PersonPages]:
    counts: dict[str, Counter[str]] = {}
    for d in details:
        for column, pages in (("actual", d.actual), ("proposed", d.proposed)):
            for p in pages:
                c = counts.setdefault(p.person, Counter())
                c[column] += 1
                c[f"{column}_ooh"] += p.out_of_hours
    return [
        PersonPages(
            person=name,
            actual=c["actual"],
            proposed=c["proposed"],
            actual_out_of_hours=c["actual_ooh"],
            proposed_out_of_hours=c["proposed_ooh"],
        )
        for name, c in sorted(counts.items())
    ]


def whatif(
    records: Iterable[IncidentRecord],
    period: str,
    start: datetime,
    end: datetime,
    actual: Policy,
    proposed: Policy,
    stored: Sequence[StoredOverride] = (),
    as_of: datetime | None = None,
) -> WhatIfReport:
    """Replay the incidents opened in ``[start, end)`` under both policies, up to
    ``as_of`` (what is known by then; default ``end``). Compliance is the report's, as of
    ``min(as_of, end)``."""
    at = as_of or end
    mine = sorted((r for r in records if start <= r.opened_at < end), key=lambda r: r.opened_at)
    actual_oncall = Oncall(actual.roster, stored)
    proposed_oncall = Oncall(proposed.roster, stored)
    details = [compare(r, actual, proposed, actual_oncall, proposed_oncall, at) for r in mine]
    changes = Counter(d.change for d in details)
    return WhatIfReport(
        period=period,
        start=start,
        end=end,
        as_of=at,
        timezone=actual.business_hours.timezone,
        incidents=len(details),
        pages_actual=sum(len(d.actual) for d in details),
        pages_proposed=sum(len(d.proposed) for d in details),
        out_of_hours_actual=sum(p.out_of_hours for d in details for p in d.actual),
        out_of_hours_proposed=sum(p.out_of_hours for d in details for p in d.proposed),
        escalated_further=changes["further"],
        escalated_less_far=changes["less_far"],
        unchanged=changes["same"],
        people=_people(details),
        compliance_actual=_compliance(mine, actual, end, min(at, end)),
        compliance_proposed=_compliance(mine, proposed, end, min(at, end)),
        differs_from_record=[d.incident_id for d in details if d.actual_level != d.recorded_level],
        updates_unknown=sum(r.status_updates is None for r in mine),
        assumptions=ASSUMPTIONS,
        details=details,
    )
