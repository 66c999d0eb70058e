"""Messages, the incident ticket and the post-mortem draft follow the seed's templates."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from domain.incident import IncidentState, LadderRun, Status, TimelineEntry
from domain.policy import Policy, Severity
from domain.policy_file import parse_policy
from domain.templates import (
    MessageKind,
    RenderedMessage,
    render_incident_report,
    render_message,
    render_postmortem_draft,
)

POLICY_PATH = Path(__file__).resolve().parents[2] / "domain" / "default_policy.yaml"
T0 = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=12)
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
    return parse_policy(POLICY_PATH.read_text(), "default_policy.yaml")


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


def render(kind: MessageKind, state: IncidentState | None = None, **extra: str) -> RenderedMessage:
    return render_message(kind, state or make_state(), default_policy(), NOW, extra)


# ---- The seed's communication templates ------------------------------------------------------


def test_initial_alert_follows_the_seed() -> None:
    msg = render(MessageKind.INITIAL_ALERT)
    assert_follows_seed(msg.text, SEED_INITIAL_ALERT)
    lines = msg.text.splitlines()
    assert lines[0] == "🚨 **Incident Alert - P1** 🚨"
    assert lines[-1] == "#incident #p1"
    assert "**Incident ID**: INC-2026-11-26-001" in lines
    assert "**Service**: api" in lines
    assert "**Impact**: API p99 > 5s" in lines
    assert "**Status**: Investigating" in lines
    assert "**ETA**: Unknown" in lines
    assert "**Updates**: Will provide updates every 15 minutes" in lines
    assert msg.subject == "[P1] INC-2026-11-26-001 api: API p99 > 5s"


def test_initial_alert_cadence_and_eta() -> None:
    p2 = render(MessageKind.INITIAL_ALERT, make_state(severity=Severity.P2), eta="30 minutes")
    assert "**Updates**: Will provide updates every 120 minutes" in p2.text
    assert "**ETA**: 30 minutes" in p2.text
    assert p2.text.rstrip().endswith("#incident #p2")

    policy = default_policy()
    p3 = policy.severities[Severity.P3].model_copy(
        update={"update_reminder_after": None, "update_overdue_after": None}
    )
    quiet = policy.model_copy(update={"severities": {**policy.severities, Severity.P3: p3}})
    msg = render_message(
        MessageKind.INITIAL_ALERT, make_state(severity=Severity.P3), quiet, NOW, None
    )
    assert "**Updates**: Will provide updates as needed" in msg.text
    assert "#incident #p3" in msg.text


def test_status_update_follows_the_seed() -> None:
    state = make_state(status=Status.MITIGATING, acknowledged_by="alice", assignee="alice")
    msg = render(MessageKind.STATUS_UPDATE, state, message="Rolled back deploy 4812")
    assert_follows_seed(msg.text, SEED_UPDATE)
    lines = msg.text.splitlines()
    assert lines[0] == "📊 **Incident Update - 14:12 UTC** 📊"
    assert "**Status**: Mitigating" in lines
    assert "**Progress**: Rolled back deploy 4812" in lines
    assert "**Next Steps**: To be determined" in lines
    assert "**ETA**: Unknown" in lines
    assert lines[-1] == "#incident #update"

    more = render(MessageKind.STATUS_UPDATE, state, message="x", next_steps="Watch p99", eta="15m")
    assert "**Next Steps**: Watch p99" in more.text
    assert "**ETA**: 15m" in more.text


def test_resolution_follows_the_seed() -> None:
    msg = render(
        MessageKind.RESOLUTION,
        resolved_state(),
        postmortem="Review scheduled 2026-11-27 19:00 UTC",
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
    p2 = render(MessageKind.RESOLUTION, resolved_state(severity=Severity.P2))
    assert "**Post-Mortem**: Not required for P2" in p2.text
    p1 = render(MessageKind.RESOLUTION, resolved_state())
    assert "**Post-Mortem**: To be scheduled" in p1.text


# ---- Pages and the other messages ---------------------------------------------------------


def test_page_reads_well_on_a_phone() -> None:
    msg = render(MessageKind.PAGE, role="primary", person="alice", window="15m", level="0")
    assert msg.subject == "[P1] INC-2026-11-26-001 api: API p99 > 5s"
    lines = msg.text.splitlines()
    assert lines[0] == "[P1] INC-2026-11-26-001 api: API p99 > 5s"
    assert lines[1] == "Paging Alice Andersen as Primary On-Call (level 1 of 4)."
    assert lines[2] == "Acknowledge within 15m:"
    assert lines[3] == "  firewatch ack INC-2026-11-26-001 --by alice"
    assert "Runbook: API Service Issues" in lines
    assert (
        "1. Check health endpoints: curl -f https://api.madplan.com/health and /health/detailed"
        in lines
    )
    assert any(line.startswith("4. Common fixes:") for line in lines)


def test_page_without_runbook_and_for_team_lead() -> None:
    state = make_state(service="billing", summary="Payments failing")
    msg = render(MessageKind.PAGE, state, role="team_lead", person="erin", window="45m")
    assert msg.subject == "[P1] INC-2026-11-26-001 billing: Payments failing"
    assert "Paging Erin Eriksen as Team Lead." in msg.text
    assert "firewatch ack INC-2026-11-26-001 --by erin" in msg.text
    assert "Runbook" not in msg.text


def test_long_multiline_summary_keeps_subject_on_one_line() -> None:
    summary = "Checkout latency\nover 5s " + "x" * 300
    msg = render(MessageKind.PAGE, make_state(summary=summary), role="primary", person="bob")
    assert "\n" not in msg.subject
    assert len(msg.subject) < 170
    assert msg.subject.endswith("…")
    assert f"Impact: {summary}" in msg.text  # the full text is still in the body


@pytest.mark.parametrize("kind", list(MessageKind))
def test_every_kind_renders_with_the_incident_id(kind: MessageKind) -> None:
    for extra in ({}, {"role": "secondary", "person": "bob", "window": "30m", "by": "alice"}):
        msg = render_message(kind, resolved_state(), default_policy(), NOW, extra)
        assert msg.subject.startswith(f"[P1] {INC} ")
        assert "\n" not in msg.subject
        assert INC in msg.text
        assert msg.text.endswith("\n")
        assert "\n\n\n" not in msg.text
        assert all(line == line.rstrip() for line in msg.text.splitlines())


def test_incident_without_human_id_uses_workflow_id() -> None:
    msg = render(MessageKind.ACKNOWLEDGED, make_state(incident_id=None, acknowledged_by="bob"))
    assert msg.subject.startswith("[P1] incident/alertmanager/api-latency Acknowledged by Bob Berg")


def test_acknowledged_and_severity_changed() -> None:
    state = make_state(
        status=Status.INVESTIGATING,
        acknowledged_at=T0 + timedelta(minutes=4),
        acknowledged_by="bob",
    )
    ack = render(MessageKind.ACKNOWLEDGED, state)
    assert "Acknowledged by Bob Berg at 14:04 UTC, 00:04 after it opened." in ack.text
    sev = render(MessageKind.SEVERITY_CHANGED, state, previous="P2", by="bob")
    assert "Severity changed from P2 to P1 - High (Sev 2) by Bob Berg." in sev.text
    assert sev.subject.startswith("[P1] INC-2026-11-26-001 Severity now P1")


def test_ladder_messages() -> None:
    repeat = render(MessageKind.LADDER_REPEAT, loop="1")
    assert "Nobody acknowledged after the whole escalation ladder (2h30m)." in repeat.text
    assert "Starting again from the top: pass 2 of 2." in repeat.text
    done = render(MessageKind.LADDER_EXHAUSTED)
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
    due = render(MessageKind.UPDATE_REMINDER, state)
    assert "P1 incidents post updates every 15 minutes." in due.text
    assert "Last update: 14:05 UTC - Looking at the pool" in due.text
    assert 'firewatch update INC-2026-11-26-001 --by alice --message "..."' in due.text
    late = render(MessageKind.UPDATE_OVERDUE, state)
    assert "OVERDUE" in late.text
    assert late.subject.startswith("[P1] INC-2026-11-26-001 Update overdue")


def test_stakeholder_notice() -> None:
    msg = render(MessageKind.STAKEHOLDER_NOTICE)
    assert "**Severity**: P1 - High (Sev 2)" in msg.text
    assert "**Started**: 2026-11-26 14:00 UTC" in msg.text
    assert "**Updates**: Will provide updates every 15 minutes in #incidents" in msg.text


def test_postmortem_scheduled_lists_attendees_and_agenda() -> None:
    msg = render(
        MessageKind.POSTMORTEM_SCHEDULED, resolved_state(), review_at="2026-11-27 19:00 UTC"
    )
    assert "Post-mortem review scheduled 2026-11-27 19:00 UTC" in msg.text
    assert "within 48h of resolution" in msg.text
    assert (
        "Attendees: Alice Andersen (responder); Bob Berg (responder); "
        "Erin Eriksen (service owner, Team Lead); "
        "Frank Foss (engineering management, Engineering Manager)"
    ) in msg.text
    assert (
        "Agenda: Timeline review, Root cause analysis, Action item assignment, Process improvements"
    ) in msg.text


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render_message(MessageKind.PAGE, make_state(), default_policy(), datetime(2026, 1, 1))


# ---- The incident ticket ---------------------------------------------------------------------


def test_report_follows_the_ticket_template() -> None:
    report = render_incident_report(resolved_state(), default_policy(), NOW)
    lines = report.splitlines()
    assert lines[0] == "# Incident Report - [2026-11-26] API p99 > 5s"
    assert all(line == line.rstrip() for line in lines)
    assert "\n\n\n" not in report
    assert [ln for ln in lines if ln.startswith("## ")] == SEED_HEADINGS
    seed_lines = [ln for ln in SEED_TICKET.splitlines() if ln.strip()]
    ours = [ln for ln in lines if ln.strip() and not ln.startswith("- **[")]
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
        "- **Action Items**: [Assign owners and due dates]",
    ):
        assert line in report.splitlines(), line


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
        "  - Erin Eriksen (service owner, Team Lead)\n"
        "  - Frank Foss (engineering management, Engineering Manager)\n"
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
    assert "  - Erin Eriksen (responder)" in draft
    assert "service owner" not in draft
    assert "  - Frank Foss (engineering management, Engineering Manager)" in draft


def test_postmortem_attendees_list_a_responding_manager_once() -> None:
    review = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
    state = resolved_state(responders=["frank"], acknowledged_by="frank", assignee="frank")
    draft = render_postmortem_draft(state, default_policy(), NOW, review)
    assert "  - Frank Foss (responder)" in draft
    assert "engineering management" not in draft
