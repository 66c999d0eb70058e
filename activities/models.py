"""Activity inputs and outputs: one model per call."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel

from domain.policy import BusinessHours, Person, Role, Roster

ChannelName = Literal["outbox", "slack", "sms", "voice", "email"]


class AllocateIncidentId(BaseModel):
    workflow_id: str
    run_id: str
    day: date


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


class DeliveryResult(BaseModel):
    idempotency_key: str
    channel: ChannelName
    delivered: bool  # False when this key had already been delivered (a retry)
    delivered_at: datetime


class WriteDocument(BaseModel):
    """A markdown document kept current (incident ticket, post-mortem draft)."""

    kind: Literal["ticket", "postmortem"]
    incident_id: str
    version: int  # a retried older write never overwrites a newer one
    markdown: str


class DocumentWritten(BaseModel):
    path: str
    version: int
