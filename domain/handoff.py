"""The weekly handoff: what the report holds, the test pages, and their verdict (all pure).

One handoff per rotation (primary, secondary) at its handoff time (``domain.rotation``).
``workflows.handoff`` runs it; everything it decides is here:

* The handoff's id is ``handoff/<role>/<shift start, UTC, minutes>``: a run started late
  (the worker was down, a Temporal Schedule catching up) names the same handoff, so it is
  recorded, and its notifications sent, once.
* The test page: one notification through *each* contact method of the incoming person
  (``Person.contact_order`` methods they have an address for), idempotency key
  ``handoff:<id>:test:<person>:<method>``. Each must be acknowledged (SMS reply, Slack
  button, ``firewatch ack-test``) within ``policy.handoff.test_page_window`` of the
  handoff's start; a method still unacknowledged at that deadline is "routing not
  verified", reported to the team lead and the outgoing person. An acknowledgement after
  the deadline is kept, but the verdict stands.
* Monitoring health: an integration that has sent nothing for ``silent_after`` (or never)
  is a finding ("Silent for 9 days"), as is a heartbeat that is missed or late.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from domain.changes import Change
from domain.policy import ROLE_TITLES, ContactType, Person, Role

HandoffRole = Literal["primary", "secondary"]
HANDOFF_ROLES: tuple[HandoffRole, ...] = ("primary", "secondary")
AckVia = Literal["sms", "slack", "cli", "api"]
HandoffStatus = Literal["testing", "finished"]

SHORT_TITLES: dict[Role, str] = {Role.PRIMARY: "Primary", Role.SECONDARY: "Secondary"}
METHOD_TITLES: dict[str, str] = {
    "sms": "SMS",
    "voice": "Voice call",
    "slack": "Slack",
    "email": "Email",
}

ACK_TEST_COMMAND = "firewatch ack-test {method} --by {name}"
CONFIRM_COMMAND = "firewatch handoff confirm --by {name}"
NOTE_COMMAND = 'firewatch handoff note "..." --by {name}'


class HandoffError(ValueError):
    """A handoff action that cannot be taken; the message says why, for the person."""


def handoff_id(role: Role | str, shift_start: datetime) -> str:
    """``handoff/primary/2026-12-07T14:00Z``: one per rotation and shift."""
    at = shift_start.astimezone(UTC)
    return f"handoff/{Role(role).value}/{at:%Y-%m-%dT%H:%MZ}"


def test_page_key(hid: str, person: str, method: str) -> str:
    return f"handoff:{hid}:test:{person}:{method}"


def person_address(person: Person, method: str) -> str | None:
    """Where ``method`` reaches ``person`` (None: it cannot)."""
    if method in ("sms", "voice"):
        return person.phone
    if method == "email":
        return person.email
    if method == "slack":  # as activities.notify: a DM found by email when there is no id
        if person.slack_user_id:
            return person.slack_user_id
        return f"email:{person.email}" if person.email else None
    return None


# ---- the test page -------------------------------------------------------------------------


class TestPage(BaseModel):
    """One test notification through one contact method of one incoming person."""

    __test__ = False  # not a pytest class
    model_config = ConfigDict(frozen=True)

    person: str  # roster name
    role: Role
    method: ContactType
    address: str
    key: str  # the notification's idempotency key
    sent_at: datetime | None = None
    acked_at: datetime | None = None
    acked_via: AckVia | None = None


def plan_test_pages(hid: str, incoming: Mapping[Role, Person]) -> list[TestPage]:
    """One page per contact method (with an address) of each incoming person, in their
    contact order. Someone holding both roles is tested once per method."""
    pages: list[TestPage] = []
    seen: set[tuple[str, str]] = set()
    for role, person in incoming.items():
        for method in person.contact_order:
            address = person_address(person, method)
            if not address or (person.name, method) in seen:
                continue
            seen.add((person.name, method))
            pages.append(
                TestPage(
                    person=person.name,
                    role=role,
                    method=method,
                    address=address,
                    key=test_page_key(hid, person.name, method),
                )
            )
    return pages


def unreachable_methods(person: Person) -> list[str]:
    """Contact methods ``person`` lists but has no address for."""
    return [m for m in person.contact_order if not person_address(person, m)]


def acknowledge(
    pages: Sequence[TestPage], person: str, method: str, at: datetime, via: AckVia
) -> tuple[list[TestPage], TestPage]:
    """``pages`` with ``person``'s ``method`` acknowledged at ``at`` (a repeat keeps the
    first acknowledgement). :class:`HandoffError` if there is no such test page."""
    for i, page in enumerate(pages):
        if page.person == person and page.method == method:
            if page.acked_at is not None:
                return list(pages), page
            done = page.model_copy(update={"acked_at": at, "acked_via": via})
            return [*pages[:i], done, *pages[i + 1 :]], done
    mine = [p.method for p in pages if p.person == person]
    if not mine:
        raise HandoffError(f"{person!r} has no test page in this handoff")
    raise HandoffError(f"{person!r} has no {method!r} test page (theirs: {', '.join(mine)})")


def unverified(pages: Iterable[TestPage], deadline: datetime) -> list[TestPage]:
    """The methods not acknowledged by ``deadline``: routing not verified."""
    return [p for p in pages if p.acked_at is None or p.acked_at > deadline]


def all_acked(pages: Iterable[TestPage]) -> bool:
    return all(p.acked_at is not None for p in pages)


# ---- the report ----------------------------------------------------------------------------


class OpenIncidentLine(BaseModel):
    incident_id: str
    severity: str | None = None
    status: str | None = None
    service: str | None = None
    summary: str | None = None
    assignee: str | None = None
    last_update_at: datetime | None = None
    last_update: str | None = None
    next_step: str | None = None


class IntegrationHealth(BaseModel):
    name: str
    kind: str
    service: str
    last_seen_at: datetime | None = None


class HeartbeatLine(BaseModel):
    name: str
    status: str  # waiting, up, late, missed (domain.heartbeats.HeartbeatStatus)
    last_ping_at: datetime | None = None


class HandoffNote(BaseModel):
    id: int
    by: str
    text: str
    at: datetime


class HandoffReport(BaseModel):
    """Everything the handoff message says, gathered at the handoff."""

    handoff_id: str
    role: Role
    team: str
    timezone: str  # the rotation's: times in the text are local to it
    at: datetime  # when it was gathered
    shift_start: datetime
    shift_end: datetime
    outgoing: Person
    incoming: Person
    incidents: list[OpenIncidentLine] = Field(default_factory=list)
    incidents_note: str | None = None  # why the list may be incomplete
    integrations: list[IntegrationHealth] = Field(default_factory=list)
    heartbeats: list[HeartbeatLine] = Field(default_factory=list)
    heartbeats_note: str | None = None  # why heartbeat states are missing
    changes: list[Change] = Field(default_factory=list)
    changes_since: datetime
    notes: list[HandoffNote] = Field(default_factory=list)
    test_pages: list[TestPage] = Field(default_factory=list)
    test_page_window: timedelta = timedelta(minutes=30)
    silent_after: timedelta = timedelta(days=7)


def silent_for(last_seen_at: datetime | None, now: datetime) -> timedelta | None:
    return None if last_seen_at is None else max(now - last_seen_at, timedelta(0))


def ago(delta: timedelta) -> str:
    """``9 days``, ``5 hours``, ``12 minutes``, ``just now``."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        amount = int(delta.total_seconds()) // size
        if amount >= 1:
            return f"{amount} {unit}{'s' if amount != 1 else ''}"
    return "just now"


def integration_findings(report: HandoffReport) -> list[str]:
    found = []
    for integ in report.integrations:
        silence = silent_for(integ.last_seen_at, report.at)
        if silence is None:
            found.append(f"{integ.name}: never sent anything")
        elif silence >= report.silent_after:
            found.append(f"{integ.name}: Silent for {ago(silence)}")
    for beat in report.heartbeats:
        if beat.status in ("missed", "late"):
            found.append(f"heartbeat {beat.name}: {beat.status}")
    return found


def findings(report: HandoffReport) -> list[str]:
    """What needs someone's attention, for the summary line and the API."""
    found = integration_findings(report)
    for person in (report.incoming,):
        missing = [m for m in ("phone", "email", "slack_user_id") if not getattr(person, m)]
        if missing:
            found.append(f"{person.label}: no {', '.join(missing)} on the roster")
    return found


def _local(at: datetime, tz: str) -> str:
    """With the zone's abbreviation: a team (and a reader) may be in another zone."""
    return f"{at.astimezone(ZoneInfo(tz)):%a %-d %b %H:%M %Z}"


def _stamp(at: datetime | None, tz: str) -> str:
    return "-" if at is None else f"{at.astimezone(ZoneInfo(tz)):%a %-d %b %H:%M %Z}"


def shift_change_text(role: Role, incoming: Person, shift_end: datetime, tz: str) -> str:
    """``Primary is now Dave Dahl until Mon 14 Dec 09:00 EST``."""
    return f"{SHORT_TITLES.get(role, ROLE_TITLES[role])} is now {incoming.label} until " + _local(
        shift_end, tz
    )


def report_subject(report: HandoffReport) -> str:
    title = SHORT_TITLES.get(report.role, ROLE_TITLES[report.role])
    return (
        f"[Handoff] {title}: {report.outgoing.label} → {report.incoming.label}, "
        f"{_local(report.shift_start, report.timezone)}"
    )


def render_report(report: HandoffReport) -> str:
    """The handoff message, sent to the outgoing and the incoming person."""
    tz = report.timezone
    title = ROLE_TITLES[report.role]
    incoming, outgoing = report.incoming, report.outgoing
    lines = [
        f"🔄 **Weekly Handoff - {title}** 🔄",
        "",
        f"**Handoff ID**: {report.handoff_id}",
        f"**Outgoing**: {outgoing.label}",
        f"**Incoming**: {incoming.label}",
        f"**Shift**: {_stamp(report.shift_start, tz)} → {_stamp(report.shift_end, tz)}",
        "",
        f"**1. Active incidents** ({len(report.incidents)})",
    ]
    if report.incidents_note:
        lines.append(f"- ⚠️ {report.incidents_note}")
    elif not report.incidents:
        lines.append("- None open")
    for inc in report.incidents:
        head = " ".join(
            x for x in (f"[{inc.severity}]" if inc.severity else "", inc.incident_id) if x
        )
        what = " ".join(x for x in (inc.service and f"{inc.service}:", inc.summary) if x)
        lines.append(f"- {head} {what}".rstrip())
        lines.append(f"  Status: {inc.status or '-'} | Assignee: {inc.assignee or 'nobody'}")
        update = inc.last_update or "none yet"
        when = f" ({_stamp(inc.last_update_at, tz)})" if inc.last_update_at else ""
        lines.append(f"  Last update: {update}{when}")
        lines.append(f"  Next step: {inc.next_step or '-'}")
    lines += ["", "**2. Monitoring health**"]
    if not report.integrations:
        lines.append("- No integrations configured")
    for integ in report.integrations:
        silence = silent_for(integ.last_seen_at, report.at)
        if silence is None:
            seen = "never sent anything ⚠️"
        else:
            flag = " ⚠️ Silent for " + ago(silence) if silence >= report.silent_after else ""
            seen = f"last sent {_stamp(integ.last_seen_at, tz)}{flag}"
        lines.append(f"- {integ.name} ({integ.kind}, {integ.service}): {seen}")
    if report.heartbeats_note:
        lines.append(f"- Heartbeats: {report.heartbeats_note}")
    elif not report.heartbeats:
        lines.append("- Heartbeats: none configured")
    for beat in report.heartbeats:
        flag = " ⚠️" if beat.status in ("missed", "late") else ""
        lines.append(
            f"- Heartbeat {beat.name}: {beat.status}{flag}, last ping "
            f"{_stamp(beat.last_ping_at, tz)}"
        )
    found = integration_findings(report)
    lines.append(f"Findings: {'; '.join(found) if found else 'none'}")
    lines += [
        "",
        f"**3. Recent changes** (since {_stamp(report.changes_since, tz)}: {len(report.changes)})",
    ]
    if not report.changes:
        lines.append("- None recorded")
    for change in report.changes:
        who = f" by {change.who}" if change.who else ""
        lines.append(f"- {_stamp(change.at, tz)} {change.service}: {change.summary}{who}")
    lines += [
        "",
        f"**4. Contact information** ({incoming.label}, please confirm)",
        f"- Phone: {incoming.phone or 'MISSING'}",
        f"- Email: {incoming.email or 'MISSING'}",
        f"- Slack: {incoming.slack_user_id or 'MISSING'}",
        f"- Contact order: {', '.join(METHOD_TITLES[m] for m in incoming.contact_order)}",
        "Confirm: reply CONFIRM by SMS, press Confirm in Slack, or run "
        + CONFIRM_COMMAND.format(name=incoming.name),
        "",
        "**5. Test page**",
    ]
    window = int(report.test_page_window.total_seconds() // 60)
    if not report.test_pages:
        lines.append("- No contact method with an address: routing cannot be tested")
    for page in report.test_pages:
        lines.append(f"- {METHOD_TITLES[page.method]} to {page.address}")
    lines.append(
        f"Acknowledge each within {window} minutes: reply TEST by SMS, press the button in"
        f" Slack, or run {ACK_TEST_COMMAND.format(method='<method>', name=incoming.name)}."
        " Unacknowledged methods are reported to the team lead as routing not verified."
    )
    lines += ["", "**6. Knowledge transfer**"]
    if not report.notes:
        lines.append(f"- No note from {outgoing.label} ({NOTE_COMMAND.format(name=outgoing.name)})")
    for note in report.notes:
        lines.append(f"- {note.text} ({note.by}, {_stamp(note.at, tz)})")
    lines += ["", "#oncall #handoff"]
    return "\n".join(lines) + "\n"


def test_page_subject(page: TestPage) -> str:
    """One line: all an SMS or a call carries, so it says how to acknowledge."""
    if page.method == "sms":
        return "[Handoff test] Firewatch test page by SMS: reply TEST to acknowledge"
    if page.method == "voice":
        return (
            f"Firewatch handoff test call. Acknowledge with firewatch ack-test voice"
            f" --by {page.person}"
        )
    return f"[Handoff test] {METHOD_TITLES[page.method]}: please acknowledge"


def rich_first(person: Person) -> Person:
    """``person`` with Slack and email first: the report is long, an SMS carries one line."""
    order = sorted(person.contact_order, key=lambda m: m not in ("slack", "email"))
    return person.model_copy(update={"contact_order": tuple(order)})


def render_test_page(page: TestPage, person: Person, hid: str, window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    command = ACK_TEST_COMMAND.format(method=page.method, name=person.name)
    how = {
        "sms": f"Reply TEST to this message within {minutes} minutes (or run {command})",
        "slack": f"Press Acknowledge test below within {minutes} minutes (or run {command})",
    }.get(page.method, f"Run {command} within {minutes} minutes")  # voice, email: no reply
    return (
        f"Firewatch test page for {person.label} ({ROLE_TITLES[page.role]}) via "
        f"{METHOD_TITLES[page.method]}.\n"
        f"This checks that pages reach you. {how}.\n"
        f"Handoff: {hid}\n"
    )


def render_test_notification(person: Person, method: str, by: str) -> tuple[str, str]:
    """(subject, text) of a test notification asked for by hand (``firewatch test-page``):
    it checks that the method reaches them; nothing to answer."""
    how = METHOD_TITLES.get(method, method)
    subject = f"[Test] Firewatch test page for {person.label} via {how}"
    text = (
        f"Firewatch test page for {person.label} via {how}, sent at {by}'s request.\n"
        "This checks that pages reach you; there is nothing to acknowledge.\n"
    )
    return subject, text


def render_unverified(
    report: HandoffReport, missing: Sequence[TestPage], deadline: datetime
) -> tuple[str, str]:
    """(subject, text) of the report to the team lead and the outgoing person."""
    who = report.incoming.label
    subject = f"[Handoff] Routing not verified for {who}"
    lines = [
        f"⚠️ **Routing not verified** - {ROLE_TITLES[report.role]} handoff",
        "",
        f"**Handoff ID**: {report.handoff_id}",
        f"**Incoming**: {who}",
        f"**Deadline**: {_stamp(deadline, report.timezone)}",
        "Not acknowledged:",
    ]
    for page in missing:
        late = (
            f" (acknowledged late, {_stamp(page.acked_at, report.timezone)})"
            if page.acked_at
            else ""
        )
        lines.append(f"- {METHOD_TITLES[page.method]} to {page.address}{late}")
    lines.append("Pages sent this way may not reach them: check with them before their shift.")
    return subject, "\n".join(lines) + "\n"


class HandoffResult(BaseModel):
    """What is kept of a handoff (``storage.handoffs``); ``firewatch handoff show``."""

    handoff_id: str
    workflow_id: str
    role: Role
    status: HandoffStatus
    report: HandoffReport
    started_at: datetime
    deadline: datetime
    test_pages: list[TestPage] = Field(default_factory=list)
    unverified: list[TestPage] = Field(default_factory=list)
    contact_confirmed_at: datetime | None = None
    contact_confirmed_via: AckVia | None = None
    finished_at: datetime | None = None


def render_result(result: HandoffResult) -> str:
    """The report and the test-page results, as ``firewatch handoff show`` prints them."""
    tz = result.report.timezone
    lines = [render_report(result.report).rstrip("\n"), "", "**Test page results**"]
    for page in result.test_pages:
        if page.acked_at is None:
            state = "NOT acknowledged" if result.status == "finished" else "waiting"
        else:
            late = " (late)" if page.acked_at > result.deadline else ""
            state = f"acknowledged {_stamp(page.acked_at, tz)} via {page.acked_via}{late}"
        lines.append(f"- {page.person} {METHOD_TITLES[page.method]}: {state}")
    if not result.test_pages:
        lines.append("- none sent")
    if result.status == "finished":
        verdict = (
            "routing verified"
            if not result.unverified
            else "routing NOT verified: "
            + ", ".join(f"{p.person} {METHOD_TITLES[p.method]}" for p in result.unverified)
        )
    else:
        verdict = f"waiting until {_stamp(result.deadline, tz)}"
    lines.append(f"Verdict: {verdict}")
    confirmed = result.contact_confirmed_at
    lines.append(
        "Contact details: "
        + (f"confirmed {_stamp(confirmed, tz)}" if confirmed else "not confirmed")
    )
    return "\n".join(lines) + "\n"
