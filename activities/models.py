"""Activity inputs and outputs: one model per call."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from domain.policy import BusinessHours, Person, Policy, Role, Roster
from domain.records import IncidentRecord

ChannelName = Literal["outbox", "slack", "sms", "voice", "email"]
CHANNEL_TITLES: dict[str, str] = {
    "outbox": "Outbox",
    "slack": "Slack",
    "sms": "SMS",
    "voice": "Voice call",
    "email": "Email",
}


class AllocateIncidentId(BaseModel):
    workflow_id: str
    run_id: str
    day: date


class OpenIncident(BaseModel):
    workflow_id: str
    run_id: str
    day: date
    at: datetime  # the opening instant: who is on call then comes back with the id
    with_policy: bool  # False when the run already carries its snapshot (continue-as-new)
    # Listed next to the id (id -> workflow mapping): what `firewatch incidents` shows.
    summary: str = ""
    service: str = ""
    severity: str = ""


class OpenedIncident(BaseModel):
    incident_id: str
    policy: Policy | None
    slack_message: bool  # the worker has Slack: keep the #incidents message in sync
    local_delivery: bool  # outbox only: notifications are local writes (local activities)
    oncall: dict[Role, Person] = Field(default_factory=dict)  # holders at the opening instant


class ResolveOncall(BaseModel):
    roster: Roster
    role: Role
    at: datetime


class NextBusinessDay(BaseModel):
    at: datetime
    hours: BusinessHours


class ReviewSlot(BaseModel):
    resolved_at: datetime
    hours: BusinessHours
    review_time: time
    within: timedelta


class Notification(BaseModel):
    """One message to one recipient. ``idempotency_key`` = incident:step:recipient:channel."""

    idempotency_key: str
    incident_id: str
    workflow_id: str
    kind: str
    recipient: str  # a roster name, or a channel such as #incidents
    person: Person | None = None
    channel: ChannelName = "outbox"
    subject: str
    text: str
    scheduled_at: datetime  # workflow time the step was due: the timeline's time
    # For notes without a person: which of the policy's channels this is (Slack routing).
    channel_role: Literal["incidents", "stakeholders", "engineering", "email"] | None = None
    html: str | None = None  # an email's HTML body as given (the monthly report page)
    # A mitigation proposal waiting for a decision: Slack shows Approve / Decline on it.
    decision_for: int | None = None


class DeliveryAttempt(BaseModel):
    """One contact method tried for a notification (timeline: failures and fallbacks)."""

    channel: ChannelName
    status: Literal["sent", "failed", "skipped", "duplicate"]
    detail: str = ""


class DeliveryResult(BaseModel):
    idempotency_key: str
    channel: ChannelName  # the channel that delivered (or the last one tried)
    delivered: bool  # False when this key had already been delivered (a retry), or nothing could
    delivered_at: datetime
    attempts: list[DeliveryAttempt] = Field(default_factory=list)


class SlackInvitee(BaseModel):
    name: str
    label: str
    slack_user_id: str | None = None
    email: str | None = None


class IncidentSnapshot(BaseModel):
    """What the single Slack message for an incident shows (no secrets: state and names)."""

    incident_id: str
    workflow_id: str
    severity: str
    severity_title: str
    service: str
    summary: str
    status: str  # the seed's words: Investigating / Mitigating / Resolved
    triggered: bool  # nobody has acknowledged yet
    open: bool
    opened_at: datetime
    assignee: str | None = None  # display label
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    duration: str | None = None  # HH:MM once resolved
    root_cause: str | None = None
    fix: str | None = None
    false_positive: bool = False
    last_update_at: datetime | None = None
    last_update_text: str | None = None
    next_escalation: str | None = None  # "page Secondary On-Call at 10:15 UTC"
    updates: str = ""  # "Will provide updates every 15 minutes"
    runbook_title: str | None = None
    runbook_url: str | None = None
    # The service's mitigations (name, title): the message's "Mitigate…" menu.
    mitigations: list[tuple[str, str]] = Field(default_factory=list)
    diagnostics: bool = False  # the service's runbook has checks: "Run diagnostics"
    incidents_channel: str
    stakeholders_channel: str
    war_room: bool = False
    war_room_name: str | None = None
    invitees: list[SlackInvitee] = Field(default_factory=list)


class WriteDocument(BaseModel):
    """A markdown document kept current (incident ticket, post-mortem draft); a ticket
    carries the incident's record for the reports, written with it under the same version."""

    kind: Literal["ticket", "postmortem"]
    incident_id: str
    version: int  # a retried older write never overwrites a newer one
    markdown: str
    record: IncidentRecord | None = None


class PublishLocally(BaseModel):
    """What one workflow step decided: notifications in order, and a document's new version
    (the incident ticket, or the post-mortem draft)."""

    notifications: list[Notification] = Field(default_factory=list)
    document: WriteDocument | None = None


class DocumentWritten(BaseModel):
    path: str
    version: int


class Published(BaseModel):
    deliveries: list[DeliveryResult]
    document: DocumentWritten | None = None
