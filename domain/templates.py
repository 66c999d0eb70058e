"""Every message Firewatch sends, rendered with Jinja2 from incident state and policy.

The seed's communication templates (Initial Alert, Update, Resolution) and its Incident
Ticket Template are reproduced line for line; Firewatch adds one ``**Incident ID**`` line
to each message so every post can be traced to its incident. Messages that the seed does
not define (pages, reminders, ...) start with a one-line header such as
``[P1] INC-2026-11-26-001 api: API p99 > 5s`` and use plain ``Label: value`` lines so they
read well in an SMS or a phone notification.

Templates are string constants (the domain package reads no files). Rendering is pure:
the caller passes ``now``; nothing here looks at a clock.

What each message needs besides the incident and the policy is its kind's model in
:mod:`domain.messages` (``PageMessage``, ``ResolutionMessage``, ...): the model names the
fields it requires, and the templates below read the same typed fields. Names in ``person``
and ``by`` are roster names (shown as their display labels; a name that is not on the roster
is shown as given); ``role`` is shown as its title; ``level`` and ``loop`` are 1-based, as
shown ("level 1 of 4", "pass 2 of 2"); ``window`` reads "15 minutes" or "2 hours";
``review_at`` is shown with its weekday and the team's local time (P3_REVIEW falls back to
``state.review_at``). Fields a message leaves unset have defaults: ``eta`` "Unknown",
``message`` the incident's last update, ``next_steps`` when the next update is due by the
cadence, ``postmortem`` (when empty) "To be scheduled" or "Not required for P2".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import DictLoader, Environment, StrictUndefined
from pydantic import BaseModel

from domain import runbook_texts as texts
from domain.durations import format_duration, format_hhmm
from domain.incident import IncidentState, Status
from domain.messages import MaintenanceKind, MaintenanceMessage, MessageKind, MessageParams
from domain.policy import ROLE_TITLES, Person, Policy, Role, SeverityPolicy
from domain.runbooks import MitigationProposal, ProposalStatus, Risk, RunbookRun


class RenderedMessage(BaseModel):
    subject: str
    text: str


# CLI commands quoted in messages (keep in step with the `firewatch` CLI).
ACK_COMMAND = "firewatch ack {incident} --by {name}"
UPDATE_COMMAND = 'firewatch update {incident} --by {name} --message "..."'
ACTION_ITEMS_BLANK = "[Assign owners and due dates]"  # the seed's blank; a post-mortem fills it
REVIEW_HELD_COMMAND = "firewatch postmortem-held {incident} --by {name}"

# Sources whose alerts come from monitoring ("Detection Method" in the ticket).
# The ticket's Detection Method: Monitoring when a tool opened the incident (a missed
# heartbeat too), Internal when someone did; `firewatch ticket --detection` corrects it.
MONITORING_SOURCES = frozenset({"alertmanager", "grafana", "pagerduty", "generic", "heartbeat"})

POSTMORTEM_AGENDA = (
    "Timeline review",
    "Root cause analysis",
    "Action item assignment",
    "Process improvements",
)

_SUBJECT_SUMMARY_MAX = 120

# ---- Templates -----------------------------------------------------------------------------

_INITIAL_ALERT = """\
🚨 **Incident Alert - {{ sev }}** 🚨

**Incident ID**: {{ id }}
**Service**: {{ service }}
**Impact**: {{ summary }}
**Status**: {{ status }}
**ETA**: {{ eta }}
**Updates**: {{ updates }}

#incident #{{ sev_lower }}
"""

_STATUS_UPDATE = """\
📊 **Incident Update - {{ now_hhmm }} UTC** 📊

**Incident ID**: {{ id }}
**Status**: {{ status }}
**Progress**: {{ message }}
**Next Steps**: {{ next_steps }}
**ETA**: {{ eta }}

#incident #update
"""

_RESOLUTION = """\
✅ **Incident Resolved - {{ resolved_hhmm }} UTC** ✅

**Incident ID**: {{ id }}
**Duration**: {{ duration }}
**Root Cause**: {{ root_cause }}
**Fix Applied**: {{ fix }}
**Post-Mortem**: {{ postmortem }}

Thank you for your patience.

#incident #resolved
"""

_STAKEHOLDER_NOTICE = """\
📣 **Incident Notice - {{ sev }}** 📣

**Incident ID**: {{ id }}
**Severity**: {{ sev }} - {{ sev_title }}
**Service**: {{ service }}
**Impact**: {{ summary }}
**Status**: {{ status }}
**Started**: {{ opened_stamp }}
**Latest Update**: {{ latest_update }}
**ETA**: {{ eta }}
**Updates**: {{ updates }} in {{ channels.incidents }}

#incident #stakeholders
"""

_RUNBOOK = """\
{% if diagnostics_line %}
{{ diagnostics_line }}
{% endif %}
{% if runbook %}
Runbook: {{ runbook.title }}{% if runbook.url %} ({{ runbook.url }}){% endif %}

{% endif %}
"""

_DIAGNOSTICS = """\
{{ header }}
Diagnostics #{{ run_number }} ({{ run_reason }}), {{ run_hhmm }} UTC: {{ run_verdict }}
{% for line in run_lines %}
{{ line }}
{% endfor %}
{% if verify_text %}
{{ verify_text }}
{% endif %}
{% for line in runbook_links %}
{{ line }}
{% endfor %}
Run again: {{ runbook_command }}
"""

_MITIGATION = """\
{{ header }}
{% if event == "proposed" %}
{{ proposer }} proposes #{{ proposal.number }} {{ proposal.action }}: {{ proposal.title }} \
({{ risk_text }}).
{% if proposal.reason %}
Reason: {{ proposal.reason }}
{% endif %}
Approve: {{ approve_command }}
Decline: {{ decline_command }}
Expires at {{ expires_hhmm }} UTC if nobody decides.
{% elif event == "running" %}
Running #{{ proposal.number }} {{ proposal.action }}: {{ proposal.title }}\
{% if decider %} (approved by {{ decider }}){% endif %}. Status: {{ status }}
{% elif event == "declined" %}
#{{ proposal.number }} {{ proposal.action }} declined by {{ decider }}\
{% if proposal_reason %}: {{ proposal_reason }}{% endif %}.
{% elif event == "expired" %}
#{{ proposal.number }} {{ proposal.action }} expired: nobody approved it in time. \
Propose it again to retry.
{% elif not outcome %}
#{{ proposal.number }} {{ proposal.action }}: {{ proposal.status.value }}.
{% else %}
#{{ proposal.number }} {{ proposal.action }} {{ outcome.status }}: {{ outcome.summary }}
{% if outcome.status == "succeeded" and proposal.verify_run %}
Verifying: diagnostics #{{ proposal.verify_run }} started.
{% elif outcome.status == "unknown" %}
Check the target system by hand before proposing it again.
{% endif %}
{% endif %}
"""

_PAGE = """\
{{ header }}
{% if long_summary %}
Impact: {{ summary }}
{% endif %}
Paging {{ person_label }} as {{ role_title }}{{ level_text }}.
Acknowledge{% if window %} within {{ window }}{% endif %}:
  {{ ack_command }}
Severity: {{ sev }} - {{ sev_title }}
Opened: {{ opened_hhmm }} UTC ({{ opened_ago }}), {{ alerts }}
{% include "runbook" %}
"""

_INFORM = """\
{{ header }}
{% if long_summary %}
Impact: {{ summary }}
{% endif %}
FYI {{ person_label }} ({{ role_title }}): a {{ sev }} - {{ sev_title }} incident is open.
{% if acknowledged and assignee %}
No action needed now; {{ assignee }} is handling it.
Status: {{ status }}
{% else %}
No action needed now; the on-call ladder is handling it.
Status: {{ status }}, not acknowledged yet{{ " (paged: " ~ assignee ~ ")" if assignee }}
{% endif %}
Opened: {{ opened_hhmm }} UTC ({{ opened_ago }})
Follow it in {{ channels.incidents }}.
"""

_ACKNOWLEDGED = """\
{{ header }}
Acknowledged by {{ ack_label }} at {{ ack_hhmm }} UTC, {{ time_to_ack }} after it opened.
Status: {{ status }}
"""

_SEVERITY_CHANGED = """\
{{ header }}
Severity changed {% if old %}from {{ old }} {% endif %}to {{ sev }} - {{ sev_title }}\
{% if by %} by {{ by }}{% endif %}.
Status: {{ status }}
Updates: {{ updates }}
"""

_ESCALATED = """\
{{ header }}
Escalated{% if by %} by {{ by }}{% endif %}{% if reason %}: {{ reason }}{% endif %}.
{% if person_label %}
Paging {{ person_label }}{% if role_title %} as {{ role_title }}{% endif %}.
{% endif %}
Status: {{ status }}, open for {{ open_for }}
{% if not acknowledged %}
Acknowledge: {{ ack_command }}
{% endif %}
"""

_RESPONDER_ADDED = """\
{{ header }}
{{ person_label }} joined as a responder{% if by %} (added by {{ by }}){% endif %}.
Responders: {{ responders }}
Status: {{ status }}
"""

_LADDER_REPEAT = """\
{{ header }}
Nobody acknowledged after the whole escalation ladder ({{ ladder_cycle }}).
Starting again from the top{% if pass_text %}: pass {{ pass_text }} of {{ loops }}{% endif %}.
Acknowledge: {{ ack_command }}
"""

_LADDER_EXHAUSTED = """\
{{ header }}
ESCALATION EXHAUSTED: nobody acknowledged after {{ loops }} \
{{ "pass" if loops == 1 else "passes" }} over the ladder ({{ ladder_levels }}).
The incident has been open and unacknowledged since {{ opened_hhmm }} UTC ({{ opened_ago }}).
Acknowledge: {{ ack_command }}
"""

_NO_PROGRESS = """\
{{ header }}
No progress for {{ no_progress_after }}: still {{ status }}{% if assignee %} with {{ assignee }}\
{% endif %}, open for {{ open_for }}.
{% if person_label %}
{{ person_label }}{% if role_title %} ({{ role_title }}){% endif %}, please check in.
{% endif %}
Last update: {{ last_update }}
"""

_UPDATE_REMINDER = """\
{{ header }}
A status update is due. {{ sev }} incidents post updates {{ cadence }}.
Last update: {{ last_update }}
Post one: {{ update_command }}
"""

_UPDATE_OVERDUE = """\
{{ header }}
Status update OVERDUE{% if assignee %} from {{ assignee }}{% endif %}: \
{{ sev }} incidents post updates {{ cadence }}.
{% if person_label and person_label != assignee %}
Reported to you, {{ person_label }}{% if role_title %} ({{ role_title }}){% endif %}: please check \
in{% if assignee %} with {{ assignee }}{% endif %} or post the update yourself.
{% endif %}
Last update: {{ last_update }}
Post one: {{ update_command }}
"""

_P3_REVIEW = """\
{{ header }}
Low-severity incident for next-business-day review{% if review_at %} at {{ review_at }}\
{% endif %}.
Status: {{ status }}, opened {{ opened_stamp }}
Ticket tracking only: no page was sent.
"""

_POSTMORTEM_SCHEDULED = """\
{{ header }}
Post-mortem review scheduled for {{ review_at }}: required for {{ sev }}, \
within {{ review_within }} of resolution.
Attendees: {{ attendees_inline }}
Agenda: {{ agenda_inline }}
"""

_POSTMORTEM_REMINDER = """\
{{ header }}
{% if review_due %}
Reminder: the post-mortem review was scheduled for {{ review_at }} and is not marked held yet.
{% else %}
Reminder: post-mortem review on {{ review_at }}.
{% endif %}
Attendees: {{ attendees_inline }}
Agenda: {{ agenda_inline }}
{% if review_due %}
Please complete the draft (timeline, root cause, action items). Once the review has taken place:
  {{ review_ack_command }}
{% else %}
Please complete the draft (timeline, root cause, action items) before the meeting.
{% endif %}
"""

_REPORT_BODY = """\
## Incident Details
- **Incident ID**: {{ id }}
- **Severity**: {{ sev }}
- **Start Time**: {{ opened_stamp }}
- **End Time**: {{ resolved_stamp }}
- **Duration**: {{ duration }}
- **Status**: {{ status }}

## Impact Assessment
- **Affected Services**: {{ t.affected_services or service }}
- **User Impact**: {{ t.user_impact or summary }}
- **Business Impact**:{{ t.business_impact | blank }}
- **Data Loss**: {{ data_loss }}
- **Customer Impact Hours**:{{ impact_hours | blank }}

## Timeline
{% for line in timeline %}
{{ line }}
{% else %}
- **[{{ opened_hhmm }}]** - Alert triggered
{% endfor %}

{% if diagnostics_runs %}
## Diagnostics
{% for run in diagnostics_runs %}
- **Run #{{ run.number }}** ({{ run.reason }}, {{ run.hhmm }} UTC): {{ run.verdict }}
{% for line in run.lines %}
  - {{ line }}
{% endfor %}
{% endfor %}

{% endif %}
## Root Cause Analysis
- **Primary Cause**:{{ root_cause_blank | blank }}
- **Contributing Factors**:{{ t.contributing_factors | blank }}
- **Detection Method**: {{ t.detection_method.value if t.detection_method else detection }}

## Mitigation Actions
1. **Immediate Actions**:{{ t.immediate_actions | blank }}{% if mitigation_lines %}

{% for line in mitigation_lines %}
   - {{ line }}
{% endfor %}
{% endif %}

2. **Temporary Workaround**:{{ t.workaround | blank }}
3. **Permanent Fix**:{{ (t.permanent_fix or fix_blank) | blank }}

## Prevention Measures
- **Short-term**:{{ t.prevention_short_term | blank }}
- **Long-term**:{{ t.prevention_long_term | blank }}
- **Monitoring Improvements**:{{ t.monitoring_improvements | blank }}
- **Process Changes**:{{ t.process_changes | blank }}

## Lessons Learned
- **What Went Well**:{{ t.what_went_well | blank }}
- **Areas for Improvement**:{{ t.areas_for_improvement | blank }}
- **Action Items**: {{ action_items }}
"""

_REPORT = """\
# Incident Report - [{{ opened_date }}] {{ summary_line }}

_Written by Firewatch from the incident record at every step: edits to this file are \
overwritten. Change the record instead: `firewatch ticket {{ id }} --by NAME --user-impact \
"..."` (every field: `firewatch ticket --help`); each change is on the timeline._

{% include "report_body" %}
"""

_POSTMORTEM_DRAFT = """\
# Post-Mortem - [{{ opened_date }}] {{ summary_line }}

_Draft prepared {{ now_stamp }} from the incident record. Fill in the blanks before the \
review._

{% include "report_body" %}

## Post-Mortem Meeting
- **Scheduled**: {{ review_stamp }}{% if review_local %} ({{ review_local }}){% endif %}

- **Attendees**:
{% for attendee in attendees %}
  - {{ attendee }}
{% endfor %}
- **Agenda**:
{% for item in agenda %}
  {{ loop.index }}. {{ item }}
{% endfor %}

## Action Items
| Owner | Item | Due | Status |
|-------|------|-----|--------|
"""

_MAINTENANCE_STARTED = """\
🔧 **Maintenance started - {{ service }}** 🔧

**Window**: {{ window }}
**Service**: {{ service }}
**Reason**: {{ reason }}
**From**: {{ starts_stamp }}
**Until**: {{ ends_stamp }} ({{ length }})
**By**: {{ by }}

Alerts for {{ service }} are recorded but page nobody until the window ends.
Incidents already open go on as before.
End it early: {{ end_command }}

#maintenance #{{ service_tag }}
"""

_MAINTENANCE_ENDED = """\
✅ **Maintenance ended - {{ service }}** ✅

**Window**: {{ window }}
**Service**: {{ service }}
**Reason**: {{ reason }}
**Ended**: {{ ended_stamp }}, {{ how_ended }}

Alerts for {{ service }} page as usual again.
Incidents opened during the window and still open start paging now.

#maintenance #{{ service_tag }}
"""

_TEMPLATES: dict[str, str] = {
    MaintenanceKind.STARTED.value: _MAINTENANCE_STARTED,
    MaintenanceKind.ENDED.value: _MAINTENANCE_ENDED,
    f"{MaintenanceKind.STARTED.value}.subject": (
        "[maintenance] {{ service_line }} until {{ ends_stamp }}: {{ reason_short }}"
    ),
    f"{MaintenanceKind.ENDED.value}.subject": (
        "[maintenance] {{ service_line }} ended: {{ reason_short }}"
    ),
    MessageKind.INITIAL_ALERT.value: _INITIAL_ALERT,
    MessageKind.PAGE.value: _PAGE,
    MessageKind.INFORM.value: _INFORM,
    MessageKind.ACKNOWLEDGED.value: _ACKNOWLEDGED,
    MessageKind.STATUS_UPDATE.value: _STATUS_UPDATE,
    MessageKind.SEVERITY_CHANGED.value: _SEVERITY_CHANGED,
    MessageKind.ESCALATED.value: _ESCALATED,
    MessageKind.RESPONDER_ADDED.value: _RESPONDER_ADDED,
    MessageKind.LADDER_REPEAT.value: _LADDER_REPEAT,
    MessageKind.LADDER_EXHAUSTED.value: _LADDER_EXHAUSTED,
    MessageKind.NO_PROGRESS.value: _NO_PROGRESS,
    MessageKind.UPDATE_REMINDER.value: _UPDATE_REMINDER,
    MessageKind.UPDATE_OVERDUE.value: _UPDATE_OVERDUE,
    MessageKind.STAKEHOLDER_NOTICE.value: _STAKEHOLDER_NOTICE,
    MessageKind.RESOLUTION.value: _RESOLUTION,
    MessageKind.P3_REVIEW.value: _P3_REVIEW,
    MessageKind.POSTMORTEM_SCHEDULED.value: _POSTMORTEM_SCHEDULED,
    MessageKind.POSTMORTEM_REMINDER.value: _POSTMORTEM_REMINDER,
    MessageKind.DIAGNOSTICS.value: _DIAGNOSTICS,
    MessageKind.MITIGATION.value: _MITIGATION,
    "runbook": _RUNBOOK,
    "report_body": _REPORT_BODY,
    "report": _REPORT,
    "postmortem_draft": _POSTMORTEM_DRAFT,
}

# What the subject says after the incident id (None: the bare header, as for a page).
_SUBJECT_TAGS: dict[MessageKind, str | None] = {
    MessageKind.INITIAL_ALERT: None,
    MessageKind.PAGE: None,
    MessageKind.INFORM: "FYI",
    MessageKind.ACKNOWLEDGED: "Acknowledged by {{ ack_label }}",
    MessageKind.STATUS_UPDATE: "Update {{ now_hhmm }} UTC",
    MessageKind.SEVERITY_CHANGED: "Severity now {{ sev }}",
    MessageKind.ESCALATED: "Escalated",
    MessageKind.RESPONDER_ADDED: "Responder added",
    MessageKind.LADDER_REPEAT: "No ack, paging again",
    MessageKind.LADDER_EXHAUSTED: "NOBODY ACKNOWLEDGED",
    MessageKind.NO_PROGRESS: "No progress",
    MessageKind.UPDATE_REMINDER: "Update due",
    MessageKind.UPDATE_OVERDUE: "Update overdue",
    MessageKind.STAKEHOLDER_NOTICE: "Stakeholder notice",
    MessageKind.RESOLUTION: "Resolved",
    MessageKind.P3_REVIEW: "Next-business-day review",
    MessageKind.POSTMORTEM_SCHEDULED: "Post-mortem scheduled",
    MessageKind.POSTMORTEM_REMINDER: "Post-mortem reminder",
    MessageKind.DIAGNOSTICS: "Diagnostics #{{ run_number }}: {{ run_verdict }}",
    MessageKind.MITIGATION: "Mitigation #{{ proposal.number }} {{ proposal.action }} {{ ended }}",
}
for _kind, _tag in _SUBJECT_TAGS.items():
    _TEMPLATES[f"{_kind.value}.subject"] = (
        "[{{ sev }}] {{ id }} "
        + (f"{_tag} - " if _tag else "")
        + "{{ service_line }}: {{ summary_short }}"
    )


_FINISHED = {
    ProposalStatus.SUCCEEDED: "succeeded",
    ProposalStatus.FAILED: "failed",
    ProposalStatus.UNKNOWN: "outcome unknown",
}


def _blank(value: str) -> str:
    """``: value`` when known, a bare ``:`` (a blank for humans) otherwise."""
    return f" {value}" if value else ""


_ENV = Environment(
    loader=DictLoader(_TEMPLATES),
    autoescape=False,
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["blank"] = _blank


def compile_templates(*more: Environment) -> int:
    """Compile every template of these message environments now (Jinja compiles on first
    use): a worker calls this before it polls, so its first workflow tasks are not the
    slow ones. Returns how many."""
    count = 0
    for env in (_ENV, *more):
        for name in env.list_templates():
            env.get_template(name)
            count += 1
    return count


# ---- Context -------------------------------------------------------------------------------


_DAY, _HOUR, _MINUTE, _SECOND = (
    timedelta(days=1),
    timedelta(hours=1),
    timedelta(minutes=1),
    timedelta(seconds=1),
)
_UNIT_NAMES = {_DAY: "day", _HOUR: "hour", _MINUTE: "minute", _SECOND: "second"}


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"timestamps must be timezone-aware, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def _hhmm(at: datetime) -> str:
    return _utc(at).strftime("%H:%M")


def _stamp(at: datetime) -> str:
    return _utc(at).strftime("%Y-%m-%d %H:%M UTC")


def _span(delta: timedelta) -> str:
    """How long, to the minute, as people say it in a page: ``2h35m``, ``15m``."""
    if delta < _MINUTE:
        return "less than a minute"
    return format_duration(delta - delta % _MINUTE)


def _ago(delta: timedelta) -> str:
    return "just now" if delta < _MINUTE else f"{_span(delta)} ago"


def _when(at: datetime, policy: Policy) -> str:
    """A meeting time: ``Tue 2037-01-13 19:00 UTC (14:00 EST)``, local to the team."""
    utc = _utc(at)
    text = utc.strftime("%a %Y-%m-%d %H:%M UTC")
    zone = policy.business_hours.timezone
    if zone != "UTC":
        text += f" ({utc.astimezone(ZoneInfo(zone)).strftime('%H:%M %Z')})"
    return text


def _window(delta: timedelta) -> str:
    """Time left to acknowledge: ``15 minutes``, ``90 minutes``, ``2 hours`` (from 2 hours)."""
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} minutes" if minutes < 120 else f"{minutes // 60} hours"


def _hours(delta: timedelta) -> str:
    """``48h`` rather than ``2d``: the seed counts review deadlines in hours."""
    if delta and delta % timedelta(hours=1) == timedelta(0):
        return f"{int(delta.total_seconds()) // 3600}h"
    return format_duration(delta)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def status_label(status: Status) -> str:
    """The seed's vocabulary (Investigating/Mitigating/Resolved) for a status.

    An unacknowledged incident (``Triggered``) is shown as "Investigating": to the
    people reading #incidents the incident is being looked into from the moment it opens.
    """
    return Status.INVESTIGATING.value if status == Status.TRIGGERED else status.value


def _natural_unit(delta: timedelta) -> timedelta:
    """Days from 2 days, hours from 2 hours (when whole), else minutes (or seconds)."""
    for unit in (_DAY, _HOUR):
        if delta >= 2 * unit and not delta % unit:
            return unit
    return _MINUTE if not delta % _MINUTE else _SECOND


def _amount(delta: timedelta, unit: timedelta) -> str:
    count = max(1, int(delta / unit))
    name = _UNIT_NAMES[unit]
    return f"{count} {name}{'' if count == 1 else 's'}"


def update_cadence(severity_policy: SeverityPolicy) -> str:
    """How often updates are posted, read as the seed says it: ``every 15–30 minutes``.

    The range runs from ``update_reminder_after`` (the assignee is reminded) to
    ``update_overdue_after`` (the update is reported overdue), in minutes under two hours
    and hours or days above (``every 2–4 hours``); a reminder after one day reads
    ``daily``. Without a cadence: ``as needed``.
    """
    low, high = severity_policy.update_reminder_after, severity_policy.update_overdue_after
    if low is None:
        return "as needed"
    if low == _DAY:
        return "daily"
    if high is None or high <= low:
        unit = _natural_unit(low)
        return f"every {_amount(low, unit)}"
    unit = _natural_unit(high)
    if not low % unit:
        return f"every {int(low / unit)}–{_amount(high, unit)}"
    return f"every {_amount(low, _natural_unit(low))} to {_amount(high, unit)}"


def _roster_person(policy: Policy, name: str | None) -> Person | None:
    """The roster person known by ``name``: a roster name or a display name."""
    if not name:
        return None
    person = policy.roster.person(name)
    if person is None:
        person = next((p for p in policy.roster.people if p.label == name), None)
    return person


def _person_label(policy: Policy, name: str | None) -> str:
    if not name:
        return ""
    person = _roster_person(policy, name)
    return person.label if person is not None else name


def _role_title(role: Role | None) -> str:
    return ROLE_TITLES[role] if role is not None else ""


def _timeline_lines(state: IncidentState, policy: Policy) -> list[str]:
    start_day = _utc(state.opened_at).date()
    lines = []
    for entry in sorted(state.timeline, key=lambda e: e.at):
        at = _utc(entry.at)
        when = at.strftime("%H:%M") if at.date() == start_day else at.strftime("%m-%d %H:%M")
        text = _one_line(entry.text)
        who = _person_label(policy, entry.by)
        by = f" ({who})" if who and who not in text else ""  # not "by Carol (Carol)"
        lines.append(f"- **[{when}]** - {text}{by}")
    return lines


def postmortem_responders(state: IncidentState, policy: Policy) -> list[str]:
    """Who responded (roster names, in order): responders, whoever acknowledged, held and
    resolved it."""
    found: list[str] = []
    for name in (*state.responders, state.acknowledged_by, state.assignee, state.resolved_by):
        if name and name not in found and policy.roster.person(name) is not None:
            found.append(name)
    return found


def postmortem_attendees(state: IncidentState, policy: Policy) -> list[str]:
    """Responders, service owners and engineering management, as display labels, each
    person once with every reason they are there.

    The policy has no per-service owner, so the team lead stands for the service owners.
    """
    roster = policy.roster
    reasons: dict[str, list[str]] = {n: ["responder"] for n in postmortem_responders(state, policy)}
    reasons.setdefault(roster.team_lead, []).append("Team Lead, for the service owners")
    reasons.setdefault(roster.engineering_manager, []).append("Engineering Manager")
    return [f"{_person_label(policy, n)} ({'; '.join(why)})" for n, why in reasons.items()]


# The fields' defaults, for the ticket and the draft (which render no message).
_NO_PARAMS = MessageParams()


def _context(
    state: IncidentState, policy: Policy, now: datetime, params: MessageParams | None
) -> dict[str, Any]:
    p = params if params is not None else _NO_PARAMS
    sp = policy.for_severity(state.severity)
    incident = state.incident_id or state.workflow_id
    summary_line = _one_line(state.summary)
    summary_short = _shorten(summary_line, _SUBJECT_SUMMARY_MAX)
    service_line = _one_line(state.service)
    sev = state.severity.value
    person = p.person
    # Commands take the roster name (`--by carol`), whichever name the caller passed.
    addressee = _roster_person(policy, person)
    ack_name = addressee.name if addressee is not None else "YOUR_NAME"
    # An update is posted by the person addressed (an overdue report), else by the assignee.
    updater = (
        addressee.name
        if addressee is not None
        else state.assignee or state.acknowledged_by or "YOUR_NAME"
    )
    level, loop = p.level, p.loop  # 1-based
    level_text = ""
    if level is not None and sp.ladder:
        level_text = f" (level {level} of {len(sp.ladder)})"
    elif level is not None:
        level_text = f" (level {level})"
    resolved_at = state.resolved_at
    default_postmortem = "To be scheduled" if sp.postmortem_required else f"Not required for {sev}"
    if state.last_update_at is not None:
        last_update = f"{_hhmm(state.last_update_at)} UTC"
        if state.last_update_text:
            last_update += f" - {_one_line(state.last_update_text)}"
    elif state.acknowledged_at is not None:
        last_update = f"none since the acknowledgement at {_hhmm(state.acknowledged_at)} UTC"
    else:
        last_update = "none yet"
    root_cause = state.root_cause or ""
    if state.false_positive:
        root_cause = f"False positive{': ' + root_cause if root_cause else ''}"
    attendees = postmortem_attendees(state, policy)
    review_time = p.review_at or state.review_at
    review_at = _when(review_time, policy) if review_time is not None else ""
    next_steps = p.next_steps or state.next_steps or "To be determined"
    if next_steps == "To be determined" and sp.update_overdue_after is not None:
        due = (state.last_update_at or now) + sp.update_overdue_after
        shown = _hhmm(due) + " UTC" if _utc(due).date() == _utc(now).date() else _stamp(due)
        next_steps = f"Next update by {shown}"
    open_for = max(state.duration(now), timedelta(0))
    return {
        "id": incident,
        "sev": sev,
        "sev_lower": sev.lower(),
        "sev_title": sp.title,
        "service": state.service,
        "service_line": service_line,
        "summary": state.summary,
        "summary_line": summary_line,
        "summary_short": summary_short,
        "long_summary": summary_short != state.summary,
        "header": f"[{sev}] {incident} {service_line}: {summary_short}",
        "status": status_label(state.status),
        "acknowledged": state.acknowledged_at is not None,
        "eta": p.eta or state.eta or "Unknown",
        "cadence": update_cadence(sp),
        "updates": f"Will provide updates {update_cadence(sp)}",
        "now_hhmm": _hhmm(now),
        "now_stamp": _stamp(now),
        "opened_hhmm": _hhmm(state.opened_at),
        "opened_stamp": _stamp(state.opened_at),
        "opened_date": _utc(state.opened_at).date().isoformat(),
        "open_for": _span(open_for),
        "opened_ago": _ago(open_for),
        "duration": format_hhmm(open_for),
        "resolved_hhmm": _hhmm(resolved_at or now),
        "resolved_stamp": _stamp(resolved_at) if resolved_at else "Ongoing",
        "alerts": f"{max(state.alert_count, 1)} alert{'s' if state.alert_count > 1 else ''}",
        "assignee": _person_label(policy, state.assignee),
        "ack_label": _person_label(policy, state.acknowledged_by or p.by) or "unknown",
        "ack_hhmm": _hhmm(state.acknowledged_at or now),
        "time_to_ack": _span(max((state.acknowledged_at or now) - state.opened_at, timedelta(0))),
        "ack_command": ACK_COMMAND.format(incident=incident, name=ack_name),
        "update_command": UPDATE_COMMAND.format(incident=incident, name=updater),
        "person_label": _person_label(policy, person),
        "role_title": _role_title(p.role),
        "window": _window(p.window) if p.window is not None else "",
        "level_text": level_text,
        "pass_text": str(loop) if loop is not None else "",
        "loops": sp.loops,
        "ladder_cycle": format_duration(sp.ladder_cycle),
        "ladder_levels": " → ".join(ROLE_TITLES[lvl.target] for lvl in sp.ladder) or "no levels",
        "no_progress_after": (
            format_duration(sp.no_progress_after) if sp.no_progress_after else "too long"
        ),
        "runbook": policy.runbooks.get(state.service),
        "channels": policy.channels,
        "message": p.message or state.last_update_text or "No details given",
        "next_steps": next_steps,
        "latest_update": state.last_update_text or "Investigation in progress",
        "last_update": last_update,
        "old": p.old.value if p.old is not None else "",
        "by": _person_label(policy, p.by),
        "reason": p.reason or "",
        "responders": ", ".join(_person_label(policy, n) for n in state.responders) or "none",
        "root_cause": root_cause or "Under investigation",
        "fix": state.fix or "Not recorded",
        "root_cause_blank": root_cause,
        "fix_blank": state.fix or "",
        "postmortem": p.postmortem or default_postmortem,
        "action_items": ACTION_ITEMS_BLANK,
        "detection": "Monitoring" if state.source in MONITORING_SOURCES else "Internal",
        "t": state.ticket,  # the fields people set (firewatch ticket)
        "data_loss": {True: "Yes", False: "No", None: "Yes/No"}[state.ticket.data_loss],
        "impact_hours": (
            f"{state.ticket.customer_impact_hours:g}"
            if state.ticket.customer_impact_hours is not None
            else ""
        ),
        "timeline": _timeline_lines(state, policy),
        "review_at": review_at,
        "review_due": review_time is not None and _utc(review_time) <= _utc(now),
        "review_ack_command": REVIEW_HELD_COMMAND.format(incident=incident, name=ack_name),
        "review_within": _hours(policy.postmortem.review_within),
        "attendees": attendees,
        "attendees_inline": "; ".join(attendees),
        "agenda": POSTMORTEM_AGENDA,
        "agenda_inline": ", ".join(POSTMORTEM_AGENDA),
        **_runbook_context(state, policy, p, ack_name, now),
    }


def _runbook_context(
    state: IncidentState, policy: Policy, p: MessageParams, name: str, now: datetime
) -> dict[str, Any]:
    """Diagnostics and mitigations: the run or proposal a message is about, and the ticket's
    Diagnostics and Mitigation Actions sections."""
    runbook = policy.runbooks.get(state.service)
    incident = state.incident_id or state.workflow_id
    actor = name if name != "YOUR_NAME" else "NAME"
    ctx: dict[str, Any] = {
        "diagnostics_line": texts.page_digest(state),
        "runbook_links": texts.link_lines(runbook),
        "runbook_command": texts.RUNBOOK_COMMAND.format(incident=incident, name=actor),
        "diagnostics_runs": [
            {
                "number": run.number,
                "reason": run.reason,
                "hhmm": _hhmm(run.finished_at),
                "verdict": texts.verdict(run),
                "lines": texts.result_lines(run, runbook),
            }
            for run in state.runbook_runs
            if run.finished_at is not None
        ],
        "mitigation_lines": [texts.proposal_line(m, policy) for m in state.mitigations],
    }
    run = state.runbook_run(p.run) if p.run is not None else None
    if p.run is not None and (run is None or run.finished_at is None):
        # Only old runs are forgotten (the state keeps the newest few): say so, plainly.
        run = RunbookRun(number=p.run, reason="no longer kept", started_at=now, finished_at=now)
    if run is not None and run.finished_at is not None:
        ctx |= {
            "run_number": run.number,
            "run_reason": run.reason,
            "run_hhmm": _hhmm(run.finished_at),
            "run_verdict": texts.verdict(run),
            "run_lines": texts.result_lines(run, runbook),
            "verify_text": texts.verification_text(run, state),
        }
    proposal = state.proposal(p.proposal) if p.proposal is not None else None
    if p.proposal is not None and proposal is None:
        proposal = MitigationProposal(
            number=p.proposal,
            action="?",
            title="no longer kept",
            risk=Risk.HIGH,
            proposed_by="",
            proposed_at=now,
        )
    if proposal is not None:
        ctx |= {
            "proposal": proposal,
            "event": p.event,
            # How it ended, for "finished": the subject must not call a failure finished.
            "ended": _FINISHED.get(proposal.status, p.event) if p.event == "finished" else p.event,
            "outcome": proposal.outcome,
            "proposer": _person_label(policy, proposal.proposed_by),
            "decider": _person_label(policy, proposal.decided_by),
            "proposal_reason": proposal.decision_reason or "",
            "risk_text": texts.RISK_TEXT[proposal.risk],
            "expires_hhmm": _hhmm(proposal.expires_at) if proposal.expires_at else "",
            "approve_command": texts.APPROVE_COMMAND.format(
                incident=incident, number=proposal.number, name="NAME"
            ),
            "decline_command": texts.DECLINE_COMMAND.format(
                incident=incident, number=proposal.number, name="NAME"
            ),
        }
    return ctx


# ---- Public API ----------------------------------------------------------------------------


def render_message(
    params: MessageParams, state: IncidentState, policy: Policy, now: datetime
) -> RenderedMessage:
    """Render one outgoing message, of the kind ``params`` is the model of.

    ``subject`` is always a single line.
    """
    ctx = _context(state, policy, now, params)
    kind = params.kind
    subject = _ENV.get_template(f"{kind.value}.subject").render(ctx)
    text = _ENV.get_template(kind.value).render(ctx)
    return RenderedMessage(subject=_one_line(subject), text=text)


def render_incident_report(state: IncidentState, policy: Policy, now: datetime) -> str:
    """The incident ticket, section by section as the seed's Incident Ticket Template.

    Facts Firewatch knows are filled in; the rest is left blank for humans. Where a
    post-mortem is required, its action items are kept there (owners, due dates, status),
    and the ticket points to it rather than show a second list that would fall behind.
    """
    ctx = _context(state, policy, now, None)
    if policy.for_severity(state.severity).postmortem_required:
        ctx["action_items"] = (
            f"kept in the post-mortem, with owners and due dates"
            f" (`firewatch postmortem show {ctx['id']}`)"
        )
    return _ENV.get_template("report").render(ctx)


def render_postmortem_draft(
    state: IncidentState, policy: Policy, now: datetime, review_at: datetime
) -> str:
    """The ticket plus a Post-Mortem Meeting section and an empty Action Items table."""
    ctx = _context(state, policy, now, None)
    ctx["review_stamp"] = _stamp(review_at)
    local = _utc(review_at).astimezone(ZoneInfo(policy.business_hours.timezone))
    ctx["review_local"] = (
        "" if policy.business_hours.timezone == "UTC" else local.strftime("%H:%M %Z")
    )
    return _ENV.get_template("postmortem_draft").render(ctx)


def render_maintenance_message(params: MaintenanceMessage, policy: Policy) -> RenderedMessage:
    """A maintenance window's announcement in #incidents (started, ended)."""
    from domain.maintenance import END_COMMAND

    ended_at = getattr(params, "ended_at", None)
    ended_by = getattr(params, "ended_by", None)
    service_line = _one_line(params.service)
    how_ended = "as scheduled"
    if ended_at is not None and ended_at < params.ends_at:
        who = f" by {_person_label(policy, ended_by)}" if ended_by else ""
        how_ended = f"early{who} (it was to end at {_stamp(params.ends_at)})"
    ctx = {
        "window": params.window,
        "service": params.service,
        "service_line": service_line,
        "service_tag": "-".join(service_line.lower().split()),
        "reason": _one_line(params.reason),
        "reason_short": _shorten(_one_line(params.reason), _SUBJECT_SUMMARY_MAX),
        "starts_stamp": _stamp(params.starts_at),
        "ends_stamp": _stamp(params.ends_at),
        "length": _span(params.ends_at - params.starts_at),
        "by": _person_label(policy, params.by),
        "ended_stamp": _stamp(ended_at) if ended_at is not None else "",
        "how_ended": how_ended,
        "end_command": END_COMMAND.format(window=params.window),
    }
    kind = params.kind.value
    subject = _ENV.get_template(f"{kind}.subject").render(ctx)
    return RenderedMessage(subject=_one_line(subject), text=_ENV.get_template(kind).render(ctx))
