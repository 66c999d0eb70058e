"""The incident as the Slack message shows it, built in the workflow (pure, deterministic).

Only state and names go in: no tokens, no settings. The worker-side activity adds the
Temporal UI link and the Slack ids it resolves.
"""

from __future__ import annotations

from datetime import datetime

from activities.models import IncidentSnapshot, SlackInvitee
from domain.durations import format_hhmm
from domain.escalation import plan
from domain.incident import IncidentState, Status
from domain.policy import ROLE_TITLES, Policy
from domain.templates import status_label, update_cadence


def war_room_name(incident_id: str) -> str:
    """The war room of INC-2026-11-26-001 is ``inc-2026-11-26-001`` (Slack wants lowercase)."""
    return incident_id.lower()


def incident_snapshot(state: IncidentState, policy: Policy, now: datetime) -> IncidentSnapshot:
    sp = policy.for_severity(state.severity)
    roster = policy.roster

    def label(name: str | None) -> str | None:
        if not name:
            return None
        person = roster.person(name)
        return person.label if person else name

    next_escalation = None
    if state.is_open:
        upcoming = plan(state, sp, now).next
        if upcoming is not None:
            what = upcoming.kind.value.replace("_", " ")
            if upcoming.role is not None:
                what = f"{what} {ROLE_TITLES[upcoming.role]}"
            next_escalation = f"{what} at {upcoming.at:%H:%M} UTC"
    names: list[str] = []
    for name in (*(p.person for p in state.pages), *state.responders, state.assignee):
        if name and name not in names:
            names.append(name)
    invitees = []
    for name in names:
        person = roster.person(name)
        if person is not None:
            invitees.append(
                SlackInvitee(
                    name=name,
                    label=person.label,
                    slack_user_id=person.slack_user_id,
                    email=person.email,
                )
            )
    runbook = policy.runbooks.get(state.service)
    incident_id = state.incident_id or state.workflow_id
    return IncidentSnapshot(
        incident_id=incident_id,
        workflow_id=state.workflow_id,
        severity=state.severity.value,
        severity_title=sp.title,
        service=state.service,
        summary=state.summary,
        status=status_label(state.status),
        triggered=state.status == Status.TRIGGERED,
        open=state.is_open,
        opened_at=state.opened_at,
        assignee=label(state.assignee),
        acknowledged_by=label(state.acknowledged_by),
        acknowledged_at=state.acknowledged_at,
        resolved_by=label(state.resolved_by),
        resolved_at=state.resolved_at,
        duration=format_hhmm(state.resolved_at - state.opened_at) if state.resolved_at else None,
        root_cause=state.root_cause,
        fix=state.fix,
        false_positive=state.false_positive,
        last_update_at=state.last_update_at,
        last_update_text=state.last_update_text,
        next_escalation=next_escalation,
        updates=f"Will provide updates {update_cadence(sp)}",
        runbook_title=runbook.title if runbook else None,
        runbook_url=runbook.url if runbook else None,
        mitigations=[(name, m.title) for name, m in runbook.mitigations.items()] if runbook else [],
        diagnostics=bool(runbook and runbook.automatic),
        incidents_channel=policy.channels.incidents,
        stakeholders_channel=policy.channels.stakeholders,
        war_room=sp.war_room,
        war_room_name=war_room_name(incident_id) if sp.war_room else None,
        invitees=invitees,
    )
