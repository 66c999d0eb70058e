"""The post-mortem's follow-through in words: its messages and its document.

Messages (``render_follow_up``) start with the incident's one-line header, as every message
the seed does not define (see ``domain.templates``). The document
(``render_postmortem_document``) is the draft of ``domain.templates.render_postmortem_draft``
kept current: the seed's sections, the Lessons Learned filled from the meeting, the meeting's
notes on the agenda, the Action Items table with each item's status, and the closure.
Pure: the caller passes ``now``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from jinja2 import DictLoader, Environment, StrictUndefined

from domain.incident import IncidentState, TicketFields
from domain.messages import (
    FollowUpKind,
    FollowUpMessage,
    ItemClosedMessage,
    ReviewRescheduledMessage,
)
from domain.policy import BusinessHours, Policy
from domain.postmortem import (
    AGENDA_FIELDS,
    KIND_TITLES,
    ActionItem,
    ActionItemKind,
    ItemStatus,
    PostmortemProgress,
    is_overdue,
    local_today,
    open_items,
    status_line,
)
from domain.templates import (
    ACTION_ITEMS_BLANK,
    POSTMORTEM_AGENDA,
    RenderedMessage,
    postmortem_attendees,
    render_postmortem_draft,
)
from domain.templates import _one_line as one_line
from domain.templates import _person_label as person_label
from domain.templates import _shorten as shorten
from domain.templates import _stamp as stamp
from domain.templates import _when as when

# CLI commands quoted in messages (keep in step with starter/cli_postmortem.py).
CLOSE_COMMAND = 'firewatch action close {incident} {number} --evidence "LINK OR TEXT" --by {name}'
VERIFY_COMMAND = "firewatch action verify {incident} {number} --by NAME"
MOVE_COMMAND = "firewatch action edit {incident} {number} --due YYYY-MM-DD --by {name}"

_ITEM_LINES = """\
Action item #{{ number }}: {{ title }}
Kind: {{ item_kind }}
Owner: {{ owner }}
Due: {{ due }} (end of day, {{ timezone }})
"""

_TEMPLATES: dict[str, str] = {
    FollowUpKind.REVIEW_RESCHEDULED.value: """\
{{ header }}
Post-mortem review moved to {{ review_at }} (was {{ old_review_at }}) by {{ by }}.
{% if reason %}
Reason: {{ reason }}
{% endif %}
Attendees: {{ attendees_inline }}
Agenda: {{ agenda_inline }}
""",
    FollowUpKind.ITEM_ASSIGNED.value: """\
{{ header }}
{{ by }} assigned you a post-mortem action item.
"""
    + _ITEM_LINES
    + """\
When it is done: {{ close_command }}
""",
    FollowUpKind.ITEM_REMINDER.value: """\
{{ header }}
Reminder: your post-mortem action item is due tomorrow.
"""
    + _ITEM_LINES
    + """\
When it is done: {{ close_command }}
Need longer: {{ move_command }}
""",
    FollowUpKind.ITEM_OVERDUE.value: """\
{{ header }}
Your post-mortem action item is overdue{{ follow_up }}.
"""
    + _ITEM_LINES
    + """\
Your team lead has been told.
When it is done: {{ close_command }}
Need longer: {{ move_command }}
""",
    FollowUpKind.ITEM_OVERDUE_REPORT.value: """\
{{ header }}
A post-mortem action item is overdue{{ follow_up }}.
"""
    + _ITEM_LINES
    + """\
The owner has been reminded.
""",
    FollowUpKind.ITEM_CLOSED.value: """\
{{ header }}
{{ by }} closed a post-mortem action item; please verify it.
"""
    + _ITEM_LINES
    + """\
Evidence: {{ evidence }}
Verify it (anyone but its owner): {{ verify_command }}
""",
    FollowUpKind.POSTMORTEM_COMPLETED.value: """\
{{ header }}
The post-mortem is complete ({{ by }}): review held, lessons learned recorded\
{% if items %}, {{ items }} action item{{ 's' if items != 1 else '' }} verified{% endif %}.
""",
}
_SUBJECTS: dict[FollowUpKind, str] = {
    FollowUpKind.REVIEW_RESCHEDULED: "Post-mortem rescheduled",
    FollowUpKind.ITEM_ASSIGNED: "Action item #{{ number }} assigned",
    FollowUpKind.ITEM_REMINDER: "Action item #{{ number }} due tomorrow",
    FollowUpKind.ITEM_OVERDUE: "Action item #{{ number }} overdue",
    FollowUpKind.ITEM_OVERDUE_REPORT: "Action item #{{ number }} overdue ({{ owner }})",
    FollowUpKind.ITEM_CLOSED: "Action item #{{ number }} closed, to verify",
    FollowUpKind.POSTMORTEM_COMPLETED: "Post-mortem complete",
}
for _kind, _tag in _SUBJECTS.items():
    _TEMPLATES[f"{_kind.value}.subject"] = f"[{{{{ sev }}}}] {{{{ id }}}} {_tag} - {{{{ rest }}}}"

_DOCUMENT_TAIL = """\
## Post-Mortem Meeting
- **Scheduled**: {{ review_stamp }}{% if reschedules %} (rescheduled {{ reschedules }}x){% endif %}

- **Held**: {{ held }}
- **Attendees**:
{% for attendee in attendees %}
  - {{ attendee }}
{% endfor %}
- **Agenda**:
{% for item in agenda %}
  {{ loop.index }}. {{ item }}
{% endfor %}

### Meeting Notes
{% for label, text in notes %}
- **{{ label }}**:{{ text | blank }}
{% endfor %}

## Action Items
| # | Owner | Item | Kind | Due | Status |
|---|-------|------|------|-----|--------|
{% for row in items %}
| {{ row.number }} | {{ row.owner }} | {{ row.title }} | {{ row.kind }} | {{ row.due }} \
| {{ row.status }} |
{% endfor %}

## Closure
{% for row in items if row.evidence %}
- **#{{ row.number }} evidence**: {{ row.evidence }}
{% endfor %}
- **Status**: {{ status }}
"""


def _blank(value: str) -> str:
    return f" {value}" if value else ""


_ENV = Environment(
    loader=DictLoader({**_TEMPLATES, "document_tail": _DOCUMENT_TAIL}),
    autoescape=False,
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["blank"] = _blank
TEMPLATES = _ENV  # the worker compiles them before it polls


def _day(d: date) -> str:
    return d.strftime("%a %Y-%m-%d")


def _header(state: IncidentState) -> dict[str, str]:
    incident = state.incident_id or state.workflow_id
    rest = f"{one_line(state.service)}: {shorten(one_line(state.summary), 120)}"
    sev = state.severity.value
    return {"id": incident, "sev": sev, "rest": rest, "header": f"[{sev}] {incident} {rest}"}


def render_follow_up(
    params: FollowUpMessage, state: IncidentState, policy: Policy, now: datetime
) -> RenderedMessage:
    """One follow-through message (the review moved, an action item's notices)."""
    ctx: dict[str, Any] = {**_header(state), "by": person_label(policy, params.by)}
    incident = ctx["id"]
    fields = params.model_dump()
    if "number" in fields:
        owner = fields["owner"]
        kind = ActionItemKind(fields["item_kind"])
        ctx |= {
            "number": fields["number"],
            "title": one_line(fields["title"]),
            "owner": person_label(policy, owner),
            "due": _day(fields["due"]),
            "item_kind": KIND_TITLES[kind],
            "timezone": policy.business_hours.timezone,
            "follow_up": (
                f" (weekly follow-up {fields['notice']})" if fields.get("notice", 0) > 1 else ""
            ),
            "close_command": CLOSE_COMMAND.format(
                incident=incident, number=fields["number"], name=owner
            ),
            "move_command": MOVE_COMMAND.format(
                incident=incident, number=fields["number"], name=owner
            ),
            "verify_command": VERIFY_COMMAND.format(incident=incident, number=fields["number"]),
        }
    if isinstance(params, ItemClosedMessage):
        ctx["evidence"] = one_line(params.evidence)
    if isinstance(params, ReviewRescheduledMessage):
        attendees = postmortem_attendees(state, policy)
        ctx |= {
            "review_at": when(params.review_at, policy),
            "old_review_at": when(params.old_review_at, policy),
            "reason": one_line(params.reason),
            "attendees_inline": "; ".join(attendees),
            "agenda_inline": ", ".join(POSTMORTEM_AGENDA),
        }
    if "items" in fields:
        ctx["items"] = fields["items"]
    kind_value = params.kind.value
    subject = _ENV.get_template(f"{kind_value}.subject").render(ctx)
    text = _ENV.get_template(kind_value).render(ctx)
    return RenderedMessage(subject=one_line(subject), text=text)


def item_status(item: ActionItem, policy: Policy, now: datetime) -> str:
    """How the table shows an item: ``Open``, ``Overdue``, ``Closed 12-03, to verify``, ..."""
    if item.status == ItemStatus.VERIFIED:
        assert item.verified_at is not None
        return (
            f"Verified by {person_label(policy, item.verified_by)}"
            f" {item.verified_at.strftime('%Y-%m-%d')}"
        )
    if item.status == ItemStatus.CLOSED:
        assert item.closed_at is not None
        return f"Closed {item.closed_at.strftime('%Y-%m-%d')}, awaiting verification"
    return "Overdue" if is_overdue(item, policy.business_hours, now) else "Open"


def _cell(text: str) -> str:
    return one_line(text).replace("|", "\\|")


# Prevention items due within this long of the review are the ticket's short-term measures.
SHORT_TERM = timedelta(days=30)


def _by_kind(items: list[ActionItem], kind: ActionItemKind) -> str:
    return "; ".join(f"#{i.number} {i.title}" for i in items if i.kind == kind)


def _joined(*parts: str | None) -> str | None:
    """The non-blank parts once each, in order; None when there are none."""
    kept: list[str] = []
    for part in parts:
        text = one_line(part or "")
        if text and text not in kept:
            kept.append(text)
    return "; ".join(kept) or None


def postmortem_ticket_fields(
    t: TicketFields, pm: PostmortemProgress, hours: BusinessHours
) -> TicketFields:
    """The ticket's Prevention Measures and Lessons Learned as the post-mortem document
    shows them: what responders wrote on the ticket, then what the meeting recorded, then
    the action items under the line their kind belongs to. Prevention items due within
    ``SHORT_TERM`` of the review (both read as the team's dates) are short-term, later
    ones long-term."""
    horizon = local_today(pm.review_at, hours) + SHORT_TERM
    prevention = [i for i in pm.items if i.kind == ActionItemKind.PREVENTION]
    short = [i for i in prevention if i.due <= horizon]
    long = [i for i in prevention if i.due > horizon]
    meeting = pm.meeting
    return t.model_copy(
        update={
            "prevention_short_term": _joined(
                t.prevention_short_term, _by_kind(short, ActionItemKind.PREVENTION)
            ),
            "prevention_long_term": _joined(
                t.prevention_long_term, _by_kind(long, ActionItemKind.PREVENTION)
            ),
            "monitoring_improvements": _joined(
                t.monitoring_improvements, _by_kind(pm.items, ActionItemKind.MONITORING)
            ),
            "process_changes": _joined(
                t.process_changes,
                meeting.process_improvements,
                _by_kind(pm.items, ActionItemKind.PROCESS),
            ),
            "what_went_well": _joined(t.what_went_well, meeting.what_went_well),
            "areas_for_improvement": _joined(
                t.areas_for_improvement, meeting.areas_for_improvement
            ),
        }
    )


def render_postmortem_document(
    state: IncidentState, policy: Policy, now: datetime, pm: PostmortemProgress
) -> str:
    """The post-mortem document as it stands at ``now`` (a new version at every change)."""
    ticket = postmortem_ticket_fields(state.ticket, pm, policy.business_hours)
    shown = state.model_copy(update={"ticket": ticket})
    draft = render_postmortem_draft(shown, policy, now, pm.review_at)
    body, _, _ = draft.partition("## Post-Mortem Meeting\n")
    head, _, rest = body.partition("\n\n")
    intro, _, rest = rest.partition("\n\n")
    intro = f"_{status_line(pm)} · updated {stamp(now)}._"
    body = f"{head}\n\n{intro}\n\n{rest}"
    items_line = f"- **Action Items**: {ACTION_ITEMS_BLANK}"
    if pm.items:
        unverified = f"{open_items(pm)} not verified"
        filled = f"- **Action Items**: {len(pm.items)}, {unverified} (see Action Items)"
        body = body.replace(items_line, filled)
    meeting = pm.meeting
    held = "Not yet"
    if pm.held_at is not None:
        held = f"{stamp(pm.held_at)}, recorded by {person_label(policy, pm.held_by)}"
    ctx = {
        "review_stamp": when(pm.review_at, policy),
        "reschedules": pm.reschedules,
        "held": held,
        "attendees": postmortem_attendees(state, policy),
        "agenda": POSTMORTEM_AGENDA,
        "notes": [(label, one_line(getattr(meeting, f))) for f, label in AGENDA_FIELDS],
        "items": [
            {
                "number": i.number,
                "owner": person_label(policy, i.owner),
                "title": _cell(i.title),
                "kind": KIND_TITLES[i.kind],
                "due": i.due.isoformat(),
                "status": item_status(i, policy, now),
                "evidence": _cell(i.evidence or ""),
            }
            for i in pm.items
        ],
        "status": (
            f"Complete {stamp(pm.completed_at)} ({person_label(policy, pm.completed_by)})"
            if pm.completed_at is not None
            else f"Open: {status_line(pm)}"
        ),
    }
    return body + _ENV.get_template("document_tail").render(ctx)
