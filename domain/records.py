"""The incident record: one row per incident that reports read (issue 14).

Written at every step of the incident with its ticket (the same activity, the same
monotonic version), and back-filled once from Temporal for incidents older than the table.
Reports read these rows; they never replay workflows or scan histories.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from domain.incident import IncidentState
from domain.policy import Severity


class IncidentRecord(BaseModel):
    incident_id: str
    workflow_id: str
    service: str
    source: str
    integration: str | None = None
    dedup_key: str
    summary: str
    severity_at_open: Severity
    severity: Severity  # final (or current)
    # Detection: the alert's own timestamp (PagerDuty payload.timestamp, startsAt); when the
    # alert carried none, the opening time, with ``detected_from_alert`` False.
    detected_at: datetime
    detected_from_alert: bool
    opened_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    status: str
    max_level_paged: int = 0  # 1-based; 0: nobody was paged
    pages: int = 0
    escalated_by_hand: bool = False
    false_positive: bool = False
    customer_impact_hours: float | None = None
    alert_count: int = 1
    postmortem_required: bool = False
    # When each status update was posted (the what-if replays no-progress pages from them);
    # None: written before the field existed, so not known.
    status_updates: list[datetime] | None = None
    version: int = 0  # the ticket version it was written with: an older write never wins


def record_of(state: IncidentState, postmortem_required: bool) -> IncidentRecord:
    """The record of ``state`` as it stands (pure)."""
    first = state.alerts[0] if state.alerts else None
    detected = state.detected_at
    return IncidentRecord(
        incident_id=state.incident_id or state.workflow_id,
        workflow_id=state.workflow_id,
        service=state.service,
        source=state.source,
        integration=first.integration if first is not None else None,
        dedup_key=state.dedup_key,
        summary=state.summary,
        severity_at_open=state.severity_at_open or state.severity,
        severity=state.severity,
        detected_at=detected if detected is not None else state.opened_at,
        detected_from_alert=detected is not None,
        opened_at=state.opened_at,
        acknowledged_at=state.acknowledged_at,
        acknowledged_by=state.acknowledged_by,
        mitigated_at=state.mitigated_at,
        resolved_at=state.resolved_at,
        resolved_by=state.resolved_by,
        status=state.status.value,
        max_level_paged=max((p.level for p in state.pages), default=-1) + 1,
        pages=len(state.pages),
        escalated_by_hand=any(e.kind == "escalate" and e.by for e in state.timeline),
        false_positive=state.false_positive,
        customer_impact_hours=state.ticket.customer_impact_hours,
        alert_count=state.alert_count,
        postmortem_required=postmortem_required,
        status_updates=[e.at for e in state.timeline if e.kind == "update"],
        version=state.ticket_version,
    )
