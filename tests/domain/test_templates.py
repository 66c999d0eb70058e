"""Messages, the incident ticket and the post-mortem draft follow the seed's templates."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from activities.config import default_policy as shipped_policy
from domain.incident import IncidentState, LadderRun, Status, TimelineEntry
from domain.messages import (
    PARAMS,
    AcknowledgedMessage,
    EscalatedMessage,
    InformMessage,
    InitialAlertMessage,
    LadderExhaustedMessage,
    LadderRepeatMessage,
    MessageKind,
    MessageParams,
    NoProgressMessage,
    P3ReviewMessage,
    PageMessage,
    PostmortemReminderMessage,
    PostmortemScheduledMessage,
    ResolutionMessage,
    ResponderAddedMessage,
    SeverityChangedMessage,
    StakeholderNoticeMessage,
    StatusUpdateMessage,
    UpdateOverdueMessage,
    UpdateReminderMessage,
)
from domain.policy import Policy, Role, Severity, SeverityPolicy
from domain.templates import (
    RenderedMessage,
    render_incident_report,
    render_message,
    render_postmortem_draft,
    update_cadence,
)

POLICY_PATH = Path(__file__).resolve().parents[2] / "domain" / "default_policy.yaml"
T0 = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=12)
MINUTE = timedelta(minutes=1)
INC = "INC-2026-11-26-001"

# The seed's templates (shared/seed/on-call-procedures.md), verbatim but for trailing spaces.
SEED_INITIAL_ALERT = """\
🚨 **Incident Alert - P[X]** 🚨

**Service**: [Service Name]
**Impact**: [Brief description]
**Status**: Investigating
**ETA**: [If known]
**Updates**: Will provide updates every [X] minutes

#incident #p[x]
"""

SEED_UPDATE = """\
📊 **Incident Update - [Time]** 📊

**Status**: [Investigating/Mitigating/Resolved]
**Progress**: [What's been done]
**Next Steps**: [What's next]
**ETA**: [If known]

#incident #update
"""

SEED_RESOLUTION = """\
✅ **Incident Resolved - [Time]** ✅

**Duration**: [HH:MM]
**Root Cause**: [Brief description]
**Fix Applied**: [What was done]
**Post-Mortem**: [When scheduled]

Thank you for your patience.

#incident #resolved
"""

SEED_TICKET = """\
# Incident Report - [YYYY-MM-DD] [Brief Description]

## Incident Details
- **Incident ID**: INC-[YYYY-MM-DD]-[###]
- **Severity**: P[0-3]
- **Start Time**: [UTC timestamp]
- **End Time**: [UTC timestamp]
- **Duration**: [HH:MM]
- **Status**: Investigating/Mitigating/Resolved

## Impact Assessment
- **Affected Services**:
- **User Impact**:
- **Business Impact**:
- **Data Loss**: Yes/No

## Timeline

## Root Cause Analysis
- **Primary Cause**:
- **Contributing Factors**:
- **Detection Method**: Monitoring/User Report/Internal

## Mitigation Actions
1. **Immediate Actions**:
2. **Temporary Workaround**:
3. **Permanent Fix**:

## Prevention Measures
- **Short-term**:
- **Long-term**:
- **Monitoring Improvements**:
- **Process Changes**:

## Lessons Learned
- **What Went Well**:
- **Areas for Improvement**:
- **Action Items**: [Assign owners and due dates]
"""

SEED_HEADINGS = [line for line in SEED_TICKET.splitlines() if line.startswith("## ")]


_PLACEHOLDER = re.compile(
    r"(\[[^\]]*\]|Investigating/Mitigating/Resolved|Monitoring/User Report/Internal)"
)


def _pattern(seed_line: str) -> re.Pattern[str]:
    """A seed line as a regex: ``[placeholders]`` and the enumerations match anything."""
    parts = _PLACEHOLDER.split(seed_line.strip())
    body = "".join(re.escape(p) if i % 2 == 0 else ".+" for i, p in enumerate(parts))
    if seed_line.strip().endswith(":"):
        body += "( .+)?"  # a blank for humans, or filled in
    return re.compile(f"^{body}$")


def assert_follows_seed(text: str, seed: str) -> None:
    """Every seed line appears, in order, with nothing but the Incident ID line added."""
    ours = [ln.strip() for ln in text.splitlines() if ln.strip()]
    ours = [ln for ln in ours if not ln.startswith("**Incident ID**")]
    theirs = [ln.strip() for ln in seed.splitlines() if ln.strip()]
    assert len(ours) == len(theirs), "\n".join(ours)
    for mine, seed_line in zip(ours, theirs, strict=True):
        assert _pattern(seed_line).match(mine), f"{mine!r} does not follow {seed_line!r}"


@cache
def default_policy() -> Policy:
    return shipped_policy()  # with the seed's runbooks (domain/default_runbooks)


def make_state(**changes: Any) -> IncidentState:
    base: dict[str, Any] = {
        "workflow_id": "incident/alertmanager/api-latency",
        "incident_id": INC,
        "dedup_key": "api-latency",
        "service": "api",
        "summary": "API p99 > 5s",
        "severity": Severity.P1,
        "source": "alertmanager",
        "opened_at": T0,
        "ladder": LadderRun(anchor=T0),
        "replanned_at": T0,
        "alert_count": 1,
    }
    base.update(changes)
    return IncidentState(**base)


def resolved_state(**changes: Any) -> IncidentState:
    values: dict[str, Any] = {
        "status": Status.RESOLVED,
        "acknowledged_at": T0 + timedelta(minutes=4),
        "acknowledged_by": "alice",
        "assignee": "alice",
        "responders": ["alice", "bob"],
        "resolved_at": T0 + timedelta(minutes=95),
        "resolved_by": "alice",
        "root_cause": "Connection pool exhausted after deploy 4812",
        "fix": "Rolled back deploy 4812 and raised the pool size",
        "timeline": [
            TimelineEntry(at=T0, kind="opened", text="Alert triggered", by="alertmanager"),
            TimelineEntry(
                at=T0 + timedelta(minutes=4), kind="ack", text="Incident acknowledged", by="alice"
            ),
            TimelineEntry(
                at=T0 + timedelta(minutes=30),
                kind="update",
                text="Mitigation implemented: rollback",
                by="alice",
            ),
            TimelineEntry(at=T0 + timedelta(minutes=95), kind="resolve", text="Issue resolved"),
        ],
    }
    values.update(changes)
    return make_state(**values)


def render(params: MessageParams, state: IncidentState | None = None) -> RenderedMessage:
    return render_message(params, state or make_state(), default_policy(), NOW)


# ---- The seed's communication templates ------------------------------------------------------


def test_initial_alert_follows_the_seed() -> None:
    msg = render(InitialAlertMessage())
    assert_follows_seed(msg.text, SEED_INITIAL_ALERT)
    lines = msg.text.splitlines()
    assert lines[0] == "🚨 **Incident Alert - P1** 🚨"
    assert lines[-1] == "#incident #p1"
    assert "**Incident ID**: INC-2026-11-26-001" in lines
    assert "**Service**: api" in lines
    assert "**Impact**: API p99 > 5s" in lines
    assert "**Status**: Investigating" in lines
    assert "**ETA**: Unknown" in lines
    assert "**Updates**: Will provide updates every 15–30 minutes" in lines
    assert msg.subject == "[P1] INC-2026-11-26-001 api: API p99 > 5s"


def test_initial_alert_cadence_and_eta() -> None:
    p2 = render(InitialAlertMessage(eta="30 minutes"), make_state(severity=Severity.P2))
    assert "**Updates**: Will provide updates every 2–4 hours" in p2.text
    assert "**ETA**: 30 minutes" in p2.text
    assert p2.text.rstrip().endswith("#incident #p2")

    policy = default_policy()
    p3 = policy.severities[Severity.P3].model_copy(
        update={"update_reminder_after": None, "update_overdue_after": None}
    )
    quiet = policy.model_copy(update={"severities": {**policy.severities, Severity.P3: p3}})
    msg = render_message(InitialAlertMessage(), make_state(severity=Severity.P3), quiet, NOW)
    assert "**Updates**: Will provide updates as needed" in msg.text
    assert "#incident #p3" in msg.text


def test_status_update_follows_the_seed() -> None:
    state = make_state(status=Status.MITIGATING, acknowledged_by="alice", assignee="alice")
    msg = render(StatusUpdateMessage(by="alice", message="Rolled back deploy 4812"), state)
    assert_follows_seed(msg.text, SEED_UPDATE)
    lines = msg.text.splitlines()
    assert lines[0] == "📊 **Incident Update - 14:12 UTC** 📊"
    assert "**Status**: Mitigating" in lines
    assert "**Progress**: Rolled back deploy 4812" in lines
    assert "**Next Steps**: Next update by 14:42 UTC" in lines  # the cadence's upper bound
    assert "**ETA**: Unknown" in lines
    assert lines[-1] == "#incident #update"

    more = render(
        StatusUpdateMessage(by="alice", message="x", next_steps="Watch p99", eta="15m"), state
    )
    assert "**Next Steps**: Watch p99" in more.text
    assert "**ETA**: 15m" in more.text


def test_resolution_follows_the_seed() -> None:
    msg = render(
        ResolutionMessage(postmortem="Review scheduled 2026-11-27 19:00 UTC"), resolved_state()
    )
    assert_follows_seed(msg.text, SEED_RESOLUTION)
    lines = msg.text.splitlines()
    assert lines[0] == "✅ **Incident Resolved - 15:35 UTC** ✅"
    assert "**Duration**: 01:35" in lines
    assert "**Root Cause**: Connection pool exhausted after deploy 4812" in lines
    assert "**Fix Applied**: Rolled back deploy 4812 and raised the pool size" in lines
    assert "**Post-Mortem**: Review scheduled 2026-11-27 19:00 UTC" in lines
    assert "Thank you for your patience." in lines
    assert lines[-1] == "#incident #resolved"
    assert msg.subject.startswith("[P1] INC-2026-11-26-001 Resolved")


def test_resolution_postmortem_defaults() -> None:
    p2 = render(ResolutionMessage(postmortem=""), resolved_state(severity=Severity.P2))
    assert "**Post-Mortem**: Not required for P2" in p2.text
    p1 = render(ResolutionMessage(postmortem=""), resolved_state())
    assert "**Post-Mortem**: To be scheduled" in p1.text


# ---- Pages and the other messages ---------------------------------------------------------


def test_page_reads_well_on_a_phone() -> None:
    msg = render(PageMessage(role=Role.PRIMARY, person="alice", window=15 * MINUTE, level=1))
    assert msg.subject == "[P1] INC-2026-11-26-001 api: API p99 > 5s"
    lines = msg.text.splitlines()
    assert lines[0] == "[P1] INC-2026-11-26-001 api: API p99 > 5s"
    assert lines[1] == "Paging Alice Andersen as Primary On-Call (level 1 of 4)."
    assert lines[2] == "Acknowledge within 15 minutes:"
    assert lines[3] == "  firewatch ack INC-2026-11-26-001 --by alice"
    assert lines[-1] == (
        "Runbook: API Service Issues (https://wiki.madplan.example/monitoring/runbooks/api)"
    )


def test_page_without_runbook_and_for_team_lead() -> None:
    state = make_state(service="billing", summary="Payments failing")
    page = PageMessage(role=Role.TEAM_LEAD, person="erin", level=3, window=45 * MINUTE)
    msg = render(page, state)
    assert msg.subject == "[P1] INC-2026-11-26-001 billing: Payments failing"
    assert "Paging Erin Eriksen as Team Lead (level 3 of 4)." in msg.text
    assert "firewatch ack INC-2026-11-26-001 --by erin" in msg.text
    assert "Runbook" not in msg.text


def test_long_multiline_summary_keeps_subject_on_one_line() -> None:
    summary = "Checkout latency\nover 5s " + "x" * 300
    page = PageMessage(role=Role.PRIMARY, person="bob", level=1, window=15 * MINUTE)
    msg = render(page, make_state(summary=summary))
    assert "\n" not in msg.subject
    assert len(msg.subject) < 170
    assert msg.subject.endswith("…")
    assert f"Impact: {summary}" in msg.text  # the full text is still in the body


# A value for every field a message model may require.
SAMPLE_FIELDS: dict[str, Any] = {
    "person": "bob",
    "role": Role.SECONDARY,
    "level": 2,
    "window": 30 * MINUTE,
    "loop": 2,
    "by": "alice",
    "message": "Rolled back deploy 4812",
    "next_steps": "Watch p99",
    "eta": "15 minutes",
    "old": Severity.P2,
    "reason": "customer impact",
    "postmortem": "Review scheduled 2026-11-27 19:00 UTC",
    "review_at": datetime(2026, 11, 27, 19, 0, tzinfo=UTC),
    "run": 1,
    "proposal": 1,
    "event": "finished",
}


def minimal(kind: MessageKind) -> MessageParams:
    """The kind's model with its required fields only."""
    cls = PARAMS[kind]
    required = {name for name, field in cls.model_fields.items() if field.is_required()}
    return cls(**{name: SAMPLE_FIELDS[name] for name in required})


def test_every_kind_has_exactly_one_model() -> None:
    models = MessageParams.__subclasses__()
    assert sorted(cls.kind for cls in models) == sorted(MessageKind)  # no kind twice
    assert set(PARAMS) == set(MessageKind)
    for kind, cls in PARAMS.items():
        assert cls.kind is kind
    assert set(SAMPLE_FIELDS) == set(MessageParams.model_fields)


@pytest.mark.parametrize("kind", list(MessageKind))
def test_every_kind_renders_from_its_minimal_model(kind: MessageKind) -> None:
    for state in (make_state(), resolved_state()):
        msg = render_message(minimal(kind), state, default_policy(), NOW)
        assert msg.subject.strip()
        assert msg.text.strip()


def test_models_refuse_missing_and_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        PageMessage(person="alice", role=Role.PRIMARY, level=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        LadderRepeatMessage(loop=2, loops=2)  # type: ignore[call-arg]


@pytest.mark.parametrize("kind", list(MessageKind))
def test_every_kind_renders_with_the_incident_id(kind: MessageKind) -> None:
    for params in (minimal(kind), PARAMS[kind](**SAMPLE_FIELDS)):
        msg = render_message(params, resolved_state(), default_policy(), NOW)
        assert msg.subject.startswith(f"[P1] {INC} ")
        assert "\n" not in msg.subject
        assert INC in msg.text
        assert msg.text.endswith("\n")
        assert "\n\n\n" not in msg.text
        assert all(line == line.rstrip() for line in msg.text.splitlines())


def test_incident_without_human_id_uses_workflow_id() -> None:
    msg = render(AcknowledgedMessage(by="bob"), make_state(incident_id=None, acknowledged_by="bob"))
    assert msg.subject.startswith("[P1] incident/alertmanager/api-latency Acknowledged by Bob Berg")


def test_acknowledged_and_severity_changed() -> None:
    state = make_state(
        status=Status.INVESTIGATING,
        acknowledged_at=T0 + timedelta(minutes=4),
        acknowledged_by="bob",
    )
    ack = render(AcknowledgedMessage(by="bob"), state)
    assert "Acknowledged by Bob Berg at 14:04 UTC, 4m after it opened." in ack.text
    sev = render(SeverityChangedMessage(old=Severity.P2, by="bob"), state)
    assert "Severity changed from P2 to P1 - High (Sev 2) by Bob Berg." in sev.text
    assert sev.subject.startswith("[P1] INC-2026-11-26-001 Severity now P1")


def test_ladder_messages() -> None:
    repeat = render(LadderRepeatMessage(loop=2))
    assert "Nobody acknowledged after the whole escalation ladder (2h30m)." in repeat.text
    assert "Starting again from the top: pass 2 of 2." in repeat.text
    done = render(LadderExhaustedMessage())
    assert "ESCALATION EXHAUSTED" in done.text
    assert "Primary On-Call → Secondary On-Call → Team Lead → Engineering Manager" in done.text
    assert "firewatch ack INC-2026-11-26-001 --by YOUR_NAME" in done.text


def test_update_reminders_name_the_cadence() -> None:
    state = make_state(
        status=Status.INVESTIGATING,
        acknowledged_by="alice",
        assignee="alice",
        last_update_at=T0 + timedelta(minutes=5),
        last_update_text="Looking at the pool",
    )
    due = render(UpdateReminderMessage(), state)
    assert "P1 incidents post updates every 15–30 minutes." in due.text
    assert "Last update: 14:05 UTC - Looking at the pool" in due.text
    assert 'firewatch update INC-2026-11-26-001 --by alice --message "..."' in due.text
    late = render(UpdateOverdueMessage(person="alice", role=Role.PRIMARY), state)
    assert "OVERDUE" in late.text
    assert late.subject.startswith("[P1] INC-2026-11-26-001 Update overdue")


def test_stakeholder_notice() -> None:
    msg = render(StakeholderNoticeMessage())
    assert "**Severity**: P1 - High (Sev 2)" in msg.text
    assert "**Started**: 2026-11-26 14:00 UTC" in msg.text
    assert "**Updates**: Will provide updates every 15–30 minutes in #incidents" in msg.text


def test_postmortem_scheduled_lists_attendees_and_agenda() -> None:
    review_at = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
    msg = render(PostmortemScheduledMessage(review_at=review_at), resolved_state())
    assert "Post-mortem review scheduled for Fri 2026-11-27 19:00 UTC (14:00 EST)" in msg.text
    assert "required for P1, within 48h of resolution." in msg.text
    assert (
        "Attendees: Alice Andersen (responder); Bob Berg (responder); "
        "Erin Eriksen (Team Lead, for the service owners); "
        "Frank Foss (Engineering Manager)"
    ) in msg.text
    assert (
        "Agenda: Timeline review, Root cause analysis, Action item assignment, Process improvements"
    ) in msg.text


# ---- Exact texts, with the models the workflows pass ------------------------------------------

BILLING: dict[str, Any] = {"service": "billing", "summary": "Payments failing"}  # no runbook
ACKED: dict[str, Any] = {
    **BILLING,
    "status": Status.INVESTIGATING,
    "acknowledged_at": T0 + timedelta(minutes=4),
    "acknowledged_by": "alice",
    "assignee": "alice",
    "assignee_level": 0,
    "responders": ["alice"],
}
HEADER = "[P1] INC-2026-11-26-001 billing: Payments failing\n"
ATTENDEES = (
    "Attendees: Alice Andersen (responder); Bob Berg (responder); "
    "Erin Eriksen (Team Lead, for the service owners); "
    "Frank Foss (Engineering Manager)\n"
    "Agenda: Timeline review, Root cause analysis, Action item assignment, Process improvements\n"
)

EXACT_TEXTS = [
    pytest.param(
        PageMessage(person="alice", role=Role.PRIMARY, level=1, window=15 * MINUTE),
        BILLING,
        HEADER + "Paging Alice Andersen as Primary On-Call (level 1 of 4).\n"
        "Acknowledge within 15 minutes:\n"
        "  firewatch ack INC-2026-11-26-001 --by alice\n"
        "Severity: P1 - High (Sev 2)\n"
        "Opened: 14:00 UTC (12m ago), 1 alert\n",
        id="page-level-1",
    ),
    pytest.param(
        PageMessage(person="frank", role=Role.ENGINEERING_MANAGER, level=4, window=60 * MINUTE),
        {**BILLING, "alert_count": 3},
        HEADER + "Paging Frank Foss as Engineering Manager (level 4 of 4).\n"
        "Acknowledge within 60 minutes:\n"
        "  firewatch ack INC-2026-11-26-001 --by frank\n"
        "Severity: P1 - High (Sev 2)\n"
        "Opened: 14:00 UTC (12m ago), 3 alerts\n",
        id="page-level-4",
    ),
    pytest.param(
        LadderRepeatMessage(loop=2),
        BILLING,
        HEADER + "Nobody acknowledged after the whole escalation ladder (2h30m).\n"
        "Starting again from the top: pass 2 of 2.\n"
        "Acknowledge: firewatch ack INC-2026-11-26-001 --by YOUR_NAME\n",
        id="ladder-repeat-second-pass",
    ),
    pytest.param(
        LadderExhaustedMessage(),
        BILLING,
        HEADER + "ESCALATION EXHAUSTED: nobody acknowledged after 2 passes over the ladder "
        "(Primary On-Call → Secondary On-Call → Team Lead → Engineering Manager).\n"
        "The incident has been open and unacknowledged since 14:00 UTC (12m ago).\n"
        "Acknowledge: firewatch ack INC-2026-11-26-001 --by YOUR_NAME\n",
        id="ladder-exhausted",
    ),
    pytest.param(
        AcknowledgedMessage(by="alice"),
        ACKED,
        HEADER + "Acknowledged by Alice Andersen at 14:04 UTC, 4m after it opened.\n"
        "Status: Investigating\n",
        id="acknowledged",
    ),
    pytest.param(
        SeverityChangedMessage(old=Severity.P2, by="bob"),
        ACKED,
        HEADER + "Severity changed from P2 to P1 - High (Sev 2) by Bob Berg.\n"
        "Status: Investigating\n"
        "Updates: Will provide updates every 15–30 minutes\n",
        id="severity-changed-from-p2",
    ),
    pytest.param(
        InformMessage(person="erin", role=Role.TEAM_LEAD),
        {**BILLING, "assignee": "alice"},
        HEADER + "FYI Erin Eriksen (Team Lead): a P1 - High (Sev 2) incident is open.\n"
        "No action needed now; the on-call ladder is handling it.\n"
        "Status: Investigating, not acknowledged yet (paged: Alice Andersen)\n"
        "Opened: 14:00 UTC (12m ago)\n"
        "Follow it in #incidents.\n",
        id="inform-unacknowledged",
    ),
    pytest.param(
        InformMessage(person="frank", role=Role.ENGINEERING_MANAGER),
        ACKED,
        HEADER + "FYI Frank Foss (Engineering Manager): a P1 - High (Sev 2) incident is open.\n"
        "No action needed now; Alice Andersen is handling it.\n"
        "Status: Investigating\n"
        "Opened: 14:00 UTC (12m ago)\n"
        "Follow it in #incidents.\n",
        id="inform-acknowledged",
    ),
    pytest.param(
        UpdateReminderMessage(),
        ACKED,
        HEADER + "A status update is due. P1 incidents post updates every 15–30 minutes.\n"
        "Last update: none since the acknowledgement at 14:04 UTC\n"
        'Post one: firewatch update INC-2026-11-26-001 --by alice --message "..."\n',
        id="update-reminder",
    ),
    pytest.param(
        UpdateOverdueMessage(person="bob", role=Role.SECONDARY),
        ACKED,
        HEADER + "Status update OVERDUE from Alice Andersen: "
        "P1 incidents post updates every 15–30 minutes.\n"
        "Reported to you, Bob Berg (Secondary On-Call): please check in with Alice Andersen "
        "or post the update yourself.\n"
        "Last update: none since the acknowledgement at 14:04 UTC\n"
        'Post one: firewatch update INC-2026-11-26-001 --by bob --message "..."\n',
        id="update-overdue-reported-above",
    ),
    pytest.param(
        NoProgressMessage(person="erin", role=Role.TEAM_LEAD),
        ACKED,
        HEADER + "No progress for 1h: still Investigating with Alice Andersen, open for 12m.\n"
        "Erin Eriksen (Team Lead), please check in.\n"
        "Last update: none since the acknowledgement at 14:04 UTC\n",
        id="no-progress",
    ),
    pytest.param(
        StatusUpdateMessage(by="alice", message="Rolled back deploy 4812"),
        {**ACKED, "last_update_at": NOW, "last_update_text": "Rolled back deploy 4812"},
        "📊 **Incident Update - 14:12 UTC** 📊\n\n"
        "**Incident ID**: INC-2026-11-26-001\n"
        "**Status**: Investigating\n"
        "**Progress**: Rolled back deploy 4812\n"
        "**Next Steps**: Next update by 14:42 UTC\n"
        "**ETA**: Unknown\n\n"
        "#incident #update\n",
        id="status-update",
    ),
    pytest.param(
        ResponderAddedMessage(person="bob", by="alice"),
        {**ACKED, "responders": ["alice", "bob"]},
        HEADER + "Bob Berg joined as a responder (added by Alice Andersen).\n"
        "Responders: Alice Andersen, Bob Berg\n"
        "Status: Investigating\n",
        id="responder-added",
    ),
    pytest.param(
        EscalatedMessage(person="erin", role=Role.TEAM_LEAD, by="alice", reason="customer impact"),
        BILLING,
        HEADER + "Escalated by Alice Andersen: customer impact.\n"
        "Paging Erin Eriksen as Team Lead.\n"
        "Status: Investigating, open for 12m\n"
        "Acknowledge: firewatch ack INC-2026-11-26-001 --by erin\n",
        id="escalated",
    ),
    pytest.param(
        P3ReviewMessage(),
        {**BILLING, "severity": Severity.P3, "review_at": datetime(2026, 11, 27, 14, tzinfo=UTC)},
        "[P3] INC-2026-11-26-001 billing: Payments failing\n"
        "Low-severity incident for next-business-day review at "
        "Fri 2026-11-27 14:00 UTC (09:00 EST).\n"
        "Status: Investigating, opened 2026-11-26 14:00 UTC\n"
        "Ticket tracking only: no page was sent.\n",
        id="p3-review",
    ),
]


@pytest.mark.parametrize(("params", "changes", "expected"), EXACT_TEXTS)
def test_exact_text(params: MessageParams, changes: dict[str, Any], expected: str) -> None:
    assert render(params, make_state(**changes)).text == expected


def test_postmortem_notices_exact_text() -> None:
    state = resolved_state(**BILLING)
    review_at = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
    scheduled = render(PostmortemScheduledMessage(review_at=review_at), state)
    assert scheduled.text == (
        HEADER + "Post-mortem review scheduled for Fri 2026-11-27 19:00 UTC (14:00 EST): "
        "required for P1, within 48h of resolution.\n" + ATTENDEES
    )
    before = render(PostmortemReminderMessage(review_at=review_at), state)
    assert before.text == (
        HEADER
        + "Reminder: post-mortem review on Fri 2026-11-27 19:00 UTC (14:00 EST).\n"
        + ATTENDEES
        + "Please complete the draft (timeline, root cause, action items) before the meeting.\n"
    )
    # The reminders come once the review time has passed and nobody marked it held.
    later = datetime(2026, 11, 28, 19, 0, tzinfo=UTC)
    after = render_message(
        PostmortemReminderMessage(review_at=review_at), state, default_policy(), later
    )
    assert after.text == (
        HEADER + "Reminder: the post-mortem review was scheduled for Fri 2026-11-27 19:00 UTC "
        "(14:00 EST) and is not marked held yet.\n" + ATTENDEES + "Please complete the draft "
        "(timeline, root cause, action items). Once the review has taken place:\n"
        "  firewatch postmortem-held INC-2026-11-26-001 --by YOUR_NAME\n"
    )


def _cadence_policy(remind: str | None, overdue: str | None) -> SeverityPolicy:
    return SeverityPolicy.model_validate(
        {"title": "x", "update_reminder_after": remind, "update_overdue_after": overdue}
    )


@pytest.mark.parametrize(
    ("remind", "overdue", "expected"),
    [
        ("15m", "30m", "every 15–30 minutes"),  # P0/P1, as the seed says it
        ("2h", "4h", "every 2–4 hours"),  # P2
        ("1d", "2d", "daily"),  # P3
        ("1h", "2h", "every 1–2 hours"),
        ("30m", "2h", "every 30 minutes to 2 hours"),
        ("90m", "3h", "every 90 minutes to 3 hours"),
        ("12h", "1d", "every 12–24 hours"),
        ("2d", "4d", "every 2–4 days"),
        ("15s", "30s", "every 15–30 seconds"),  # tests' fast policies
        (None, None, "as needed"),
    ],
)
def test_update_cadence_reads_like_the_seed(
    remind: str | None, overdue: str | None, expected: str
) -> None:
    assert update_cadence(_cadence_policy(remind, overdue)) == expected


def test_acknowledge_command_takes_the_roster_name_whichever_name_is_passed() -> None:
    for person in ("carol", "Carol Christensen"):
        msg = render(PageMessage(role=Role.PRIMARY, person=person, level=1, window=15 * MINUTE))
        assert "  firewatch ack INC-2026-11-26-001 --by carol\n" in msg.text
        assert "Paging Carol Christensen as Primary On-Call (level 1 of 4)." in msg.text
    stranger = render(
        PageMessage(role=Role.PRIMARY, person="Someone Else", level=1, window=15 * MINUTE)
    )
    assert "--by YOUR_NAME" in stranger.text


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render_message(InitialAlertMessage(), make_state(), default_policy(), datetime(2026, 1, 1))


# ---- The incident ticket ---------------------------------------------------------------------


def test_report_follows_the_ticket_template() -> None:
    report = render_incident_report(resolved_state(), default_policy(), NOW)
    lines = report.splitlines()
    assert lines[0] == "# Incident Report - [2026-11-26] API p99 > 5s"
    assert all(line == line.rstrip() for line in lines)
    assert "\n\n\n" not in report
    assert [ln for ln in lines if ln.startswith("## ")] == SEED_HEADINGS
    seed_lines = [ln for ln in SEED_TICKET.splitlines() if ln.strip()]
    # Two lines beyond the seed: the note that the file is output, and the customer
    # impact hours (a figure the monthly report sums).
    extensions = ("_Written by Firewatch from the incident record", "- **Customer Impact Hours**:")
    assert [ln for ln in lines if ln.startswith(extensions)] == [
        lines[2],
        "- **Customer Impact Hours**:",
    ]
    ours = [ln for ln in lines if ln.strip() and not ln.startswith(("- **[", *extensions))]
    assert len(ours) == len(seed_lines)
    for mine, seed_line in zip(ours, seed_lines, strict=True):
        assert _pattern(seed_line).match(mine.strip()), f"{mine!r} vs {seed_line!r}"


def test_report_is_filled_from_state() -> None:
    report = render_incident_report(resolved_state(), default_policy(), NOW)
    for line in (
        "- **Incident ID**: INC-2026-11-26-001",
        "- **Severity**: P1",
        "- **Start Time**: 2026-11-26 14:00 UTC",
        "- **End Time**: 2026-11-26 15:35 UTC",
        "- **Duration**: 01:35",
        "- **Status**: Resolved",
        "- **Affected Services**: api",
        "- **User Impact**: API p99 > 5s",
        "- **Business Impact**:",
        "- **Data Loss**: Yes/No",
        "- **[14:00]** - Alert triggered (alertmanager)",
        "- **[14:04]** - Incident acknowledged (Alice Andersen)",
        "- **[14:30]** - Mitigation implemented: rollback (Alice Andersen)",
        "- **[15:35]** - Issue resolved",
        "- **Primary Cause**: Connection pool exhausted after deploy 4812",
        "- **Contributing Factors**:",
        "- **Detection Method**: Monitoring",
        "1. **Immediate Actions**:",
        "3. **Permanent Fix**: Rolled back deploy 4812 and raised the pool size",
        # A P1's post-mortem is required and holds the action items: the ticket points there.
        "- **Action Items**: kept in the post-mortem, with owners and due dates"
        " (`firewatch postmortem show INC-2026-11-26-001`)",
    ):
        assert line in report.splitlines(), line


def test_a_ticket_without_a_required_postmortem_keeps_the_action_items_blank() -> None:
    report = render_incident_report(resolved_state(severity=Severity.P2), default_policy(), NOW)
    assert "- **Action Items**: [Assign owners and due dates]" in report.splitlines()
    assert "postmortem show" not in report


def test_report_of_an_open_internal_incident() -> None:
    state = make_state(source="cli", severity=Severity.P2)
    report = render_incident_report(state, default_policy(), T0 + timedelta(hours=2, minutes=5))
    lines = report.splitlines()
    assert "- **End Time**: Ongoing" in lines
    assert "- **Duration**: 02:05" in lines
    assert "- **Status**: Investigating" in lines
    assert "- **Detection Method**: Internal" in lines
    assert "- **Primary Cause**:" in lines
    assert "3. **Permanent Fix**:" in lines
    assert "- **[14:00]** - Alert triggered" in lines  # no timeline yet: the opening


def test_timeline_names_the_person_once() -> None:
    state = resolved_state(
        timeline=[
            TimelineEntry(at=T0, kind="ack", text="Incident acknowledged by Bob Berg", by="bob"),
            TimelineEntry(at=T0, kind="update", text="Rolled back", by="bob"),
        ]
    )
    lines = render_incident_report(state, default_policy(), NOW).splitlines()
    assert "- **[14:00]** - Incident acknowledged by Bob Berg" in lines
    assert "- **[14:00]** - Rolled back (Bob Berg)" in lines


def test_timeline_entries_on_a_later_day_show_the_date() -> None:
    state = resolved_state(
        timeline=[
            TimelineEntry(at=T0, kind="opened", text="Alert triggered"),
            TimelineEntry(at=T0 + timedelta(hours=11), kind="resolve", text="Issue resolved"),
        ],
        resolved_at=T0 + timedelta(hours=11),
    )
    report = render_incident_report(state, default_policy(), NOW)
    assert "- **[11-27 01:00]** - Issue resolved" in report.splitlines()
    assert "- **Duration**: 11:00" in report.splitlines()


# ---- The post-mortem draft ----------------------------------------------------------------------


def test_postmortem_draft() -> None:
    review = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
    draft = render_postmortem_draft(resolved_state(), default_policy(), NOW, review)
    lines = draft.splitlines()
    assert lines[0] == "# Post-Mortem - [2026-11-26] API p99 > 5s"
    assert all(line == line.rstrip() for line in lines)
    assert "\n\n\n" not in draft
    headings = [ln for ln in lines if ln.startswith("## ")]
    assert headings == [*SEED_HEADINGS, "## Post-Mortem Meeting", "## Action Items"]
    assert "- **Scheduled**: 2026-11-27 19:00 UTC (14:00 EST)" in lines
    meeting = draft.split("## Post-Mortem Meeting", 1)[1]
    assert (
        "- **Attendees**:\n"
        "  - Alice Andersen (responder)\n"
        "  - Bob Berg (responder)\n"
        "  - Erin Eriksen (Team Lead, for the service owners)\n"
        "  - Frank Foss (Engineering Manager)\n"
    ) in meeting
    assert (
        "- **Agenda**:\n"
        "  1. Timeline review\n"
        "  2. Root cause analysis\n"
        "  3. Action item assignment\n"
        "  4. Process improvements\n"
    ) in meeting
    assert draft.endswith("| Owner | Item | Due | Status |\n|-------|------|-----|--------|\n")
    # The prefilled ticket facts are there too.
    assert "- **Primary Cause**: Connection pool exhausted after deploy 4812" in lines


def test_postmortem_attendees_do_not_repeat_the_team_lead() -> None:
    review = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
    state = resolved_state(responders=["erin"], acknowledged_by="erin", assignee="erin")
    draft = render_postmortem_draft(state, default_policy(), NOW, review)
    assert draft.count("Erin Eriksen") == 1
    assert "  - Erin Eriksen (responder; Team Lead, for the service owners)" in draft
    assert "  - Frank Foss (Engineering Manager)" in draft


def test_postmortem_attendees_list_a_responding_manager_once() -> None:
    review = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
    state = resolved_state(responders=["frank"], acknowledged_by="frank", assignee="frank")
    draft = render_postmortem_draft(state, default_policy(), NOW, review)
    assert draft.count("Frank Foss") == 1
    assert "  - Frank Foss (responder; Engineering Manager)" in draft


def test_detection_method_follows_who_opened_the_incident() -> None:
    def detection(source: str) -> str:
        report = render_incident_report(resolved_state(source=source), default_policy(), NOW)
        return next(line for line in report.splitlines() if "**Detection Method**" in line)

    by_tool = ("alertmanager", "grafana", "pagerduty", "generic", "heartbeat")
    assert {detection(s) for s in by_tool} == {"- **Detection Method**: Monitoring"}
    assert {detection(s) for s in ("api", "cli")} == {"- **Detection Method**: Internal"}
