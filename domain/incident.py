"""Incident state, timeline and the requests that move an incident along.

These models travel as Temporal payloads (pydantic converter), so they stay plain data.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from domain.maintenance import PagingHold
from domain.policy import Policy, Role, Severity
from domain.runbooks import MitigationProposal, RunbookRun


class Status(StrEnum):
    TRIGGERED = "Triggered"  # nobody has acknowledged
    INVESTIGATING = "Investigating"  # acknowledged
    MITIGATING = "Mitigating"
    RESOLVED = "Resolved"


OPEN_STATUSES = (Status.TRIGGERED, Status.INVESTIGATING, Status.MITIGATING)

# "generic": the generic webhook (/ingest/generic), which monitoring tools without an
# integration of their own call; "api" and "cli": someone opened it by hand.
AlertSource = Literal[
    "cli", "api", "generic", "pagerduty", "alertmanager", "grafana", "slack", "sms", "heartbeat"
]


class Alert(BaseModel):
    """One alert as received, normalised across sources."""

    source: AlertSource
    dedup_key: str = Field(min_length=1, max_length=255)
    summary: str = Field(min_length=1, max_length=1024)
    service: str = Field(min_length=1, max_length=200)
    severity: Severity
    integration: str | None = None
    received_at: datetime | None = None
    detected_at: datetime | None = None  # when monitoring saw it (Alertmanager startsAt): MTTD
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    links: list[str] = Field(default_factory=list)
    group_key: str | None = None
    fingerprint: str | None = None
    generator_url: str | None = None


class TimelineEntry(BaseModel):
    at: datetime
    kind: str  # opened, alert, page, ack, update, severity, escalate, resolve, notify, ...
    text: str
    by: str | None = None


class Page(BaseModel):
    """Someone was paged for a ladder level (used to know who sits where)."""

    at: datetime
    person: str
    role: Role
    level: int
    step: str


class LadderRun(BaseModel):
    """The current pass over the escalation ladder.

    ``epoch`` grows whenever the ladder is re-planned (severity change, escalate now),
    which gives every step a fresh, stable idempotency key.
    """

    epoch: int = 0
    anchor: datetime
    start_level: int = 0


class DetectionMethod(StrEnum):
    MONITORING = "Monitoring"
    USER_REPORT = "User Report"
    INTERNAL = "Internal"


_Text = Field(default=None, min_length=1, max_length=4000)


class TicketFields(BaseModel):
    """The Incident Report's fields people fill in (the seed's ticket template), typed.

    None: not given yet (the ticket shows what Firewatch knows, or a blank). Primary cause
    and permanent fix default to the resolution's root cause and fix.
    """

    affected_services: str | None = Field(default=None, min_length=1, max_length=1000)
    user_impact: str | None = _Text
    business_impact: str | None = _Text
    data_loss: bool | None = None
    customer_impact_hours: float | None = Field(default=None, ge=0, le=1_000_000)
    contributing_factors: str | None = _Text
    detection_method: DetectionMethod | None = None
    immediate_actions: str | None = _Text
    workaround: str | None = _Text
    permanent_fix: str | None = _Text
    prevention_short_term: str | None = _Text
    prevention_long_term: str | None = _Text
    monitoring_improvements: str | None = _Text
    process_changes: str | None = _Text
    what_went_well: str | None = _Text
    areas_for_improvement: str | None = _Text


class IncidentState(BaseModel):
    workflow_id: str
    incident_id: str | None = None
    dedup_key: str
    service: str
    summary: str
    severity: Severity
    status: Status = Status.TRIGGERED
    source: AlertSource = "api"
    opened_at: datetime
    detected_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    assignee: str | None = None
    assignee_level: int | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    root_cause: str | None = None
    fix: str | None = None
    false_positive: bool = False
    responders: list[str] = Field(default_factory=list)
    alert_count: int = 0
    alerts: list[Alert] = Field(default_factory=list)  # the most recent few; count is exact
    timeline: list[TimelineEntry] = Field(default_factory=list)
    pages: list[Page] = Field(default_factory=list)
    ladder: LadderRun
    replanned_at: datetime  # severity set or changed: anchor for every relative deadline
    last_update_at: datetime | None = None
    last_update_text: str | None = None
    next_steps: str | None = None  # from the latest status update that gave them
    eta: str | None = None
    ticket: TicketFields = Field(default_factory=lambda: TicketFields())
    stakeholders_informed_at: datetime | None = None
    review_at: datetime | None = None  # P3: next-business-day review
    fired: list[str] = Field(default_factory=list)  # escalation steps already carried out
    next_step_at: datetime | None = None
    next_step_label: str | None = None
    postmortem_workflow_id: str | None = None
    ticket_version: int = 0
    ticket_written_at: datetime | None = None  # workflow time of the last ticket write
    severity_at_open: Severity | None = None  # for the records (None: opened before it existed)
    slack_message: bool = False  # the worker has Slack: keep the #incidents message in sync
    local_delivery: bool = False  # outbox only: each step's notifications are one local write
    runbook_runs: list[RunbookRun] = Field(default_factory=list)  # the latest few, newest last
    runbook_runs_started: int = 0
    mitigations: list[MitigationProposal] = Field(default_factory=list)
    paging_hold: PagingHold | None = None  # opened during maintenance: nobody paged until then

    @classmethod
    def opened(
        cls,
        workflow_id: str,
        incident_id: str,
        alert: Alert,
        now: datetime,
        *,
        slack_message: bool,
        local_delivery: bool,
        hold: PagingHold | None,
    ) -> IncidentState:
        """A new incident from its first alert, its ladder anchored at ``now``."""
        return cls(
            workflow_id=workflow_id,
            incident_id=incident_id,
            dedup_key=alert.dedup_key,
            service=alert.service,
            summary=alert.summary,
            severity=alert.severity,
            severity_at_open=alert.severity,
            source=alert.source,
            opened_at=now,
            detected_at=alert.detected_at,
            ladder=LadderRun(anchor=now),
            replanned_at=now,
            slack_message=slack_message,
            local_delivery=local_delivery,
            paging_hold=hold,
        )

    def runbook_run(self, number: int) -> RunbookRun | None:
        return next((r for r in self.runbook_runs if r.number == number), None)

    @property
    def latest_diagnostics(self) -> RunbookRun | None:
        """The newest run that has finished: what pages and the ticket show."""
        done = [r for r in self.runbook_runs if r.finished_at is not None]
        return max(done, key=lambda r: r.number) if done else None

    def proposal(self, number: int) -> MitigationProposal | None:
        return next((m for m in self.mitigations if m.number == number), None)

    @property
    def is_open(self) -> bool:
        return self.status != Status.RESOLVED

    @property
    def last_progress_at(self) -> datetime | None:
        """The latest acknowledgement, status update or mitigation: progress restarts clocks."""
        moments = [m for m in (self.acknowledged_at, self.last_update_at, self.mitigated_at) if m]
        return max(moments) if moments else None

    def duration(self, now: datetime) -> timedelta:
        return (self.resolved_at or now) - self.opened_at


class IncidentInput(BaseModel):
    """Workflow input. ``state`` is set when continuing as new."""

    workflow_id_hint: str | None = None
    state: IncidentState | None = None
    policy: Policy | None = None
    pending_alerts: list[Alert] = Field(default_factory=list)
    hold: PagingHold | None = None  # the service is in maintenance: open with paging held


# ---- Requests (one model per message) ---------------------------------------------------


class AcknowledgeRequest(BaseModel):
    by: str


class StatusUpdateRequest(BaseModel):
    """The seed's Update template: progress (``message``), next steps and ETA."""

    by: str
    message: str = Field(min_length=1, max_length=4000)
    status: Literal[Status.INVESTIGATING, Status.MITIGATING] | None = None
    next_steps: str | None = Field(default=None, min_length=1, max_length=1000)
    eta: str | None = Field(default=None, min_length=1, max_length=200)


class TicketEdit(TicketFields):
    """Set some of the ticket's fields (those given; the others stay as they are)."""

    by: str


class SeverityChangeRequest(BaseModel):
    by: str
    severity: Severity


class EscalateRequest(BaseModel):
    by: str  # pages someone: always a roster person, on the timeline
    reason: str | None = None


class AddResponderRequest(BaseModel):
    by: str
    person: str


class ResolveRequest(BaseModel):
    by: str
    root_cause: str = Field(min_length=1, max_length=4000)
    fix: str = Field(min_length=1, max_length=4000)
    false_positive: bool = False
    ticket: TicketFields | None = None  # ticket fields set with the resolution (Slack form)


class DiagnosticsRequest(BaseModel):
    """Run the service's runbook checks again (all, or one by name)."""

    by: str
    check: str | None = Field(default=None, max_length=64)


class MitigationRequest(BaseModel):
    """Propose one of the service's mitigation actions (``rollback``, ``restart``, ...)."""

    by: str
    action: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=1000)


class MitigationDecision(BaseModel):
    """Approve or decline a proposal, by its number within the incident."""

    by: str
    proposal: int = Field(ge=1)
    approve: bool = True
    reason: str | None = Field(default=None, max_length=1000)


class ReleasePaging(BaseModel):
    """Maintenance window ``window`` is over (ended early by ``by``, or at its end)."""

    window: int
    by: str | None = None
    early: bool = False


class AlertResolveRequest(BaseModel):
    """A monitoring tool said the alert cleared (auto-resolve)."""

    source: AlertSource
    dedup_key: str
    integration: str | None = None


class AlertAcknowledgeRequest(BaseModel):
    """A monitoring tool acknowledged the alert (PagerDuty ``acknowledge`` event)."""

    source: AlertSource
    dedup_key: str
    integration: str | None = None
