"""What each message kind needs besides the incident and the policy: one typed model per kind.

The code that decides a message builds its model (``PageMessage(person=..., level=1, ...)``);
the templates in :mod:`domain.templates` read the same fields. A renamed or missing field
fails type checking where the message is decided, not in production.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from domain.policy import Role, Severity

MitigationEvent = Literal["proposed", "running", "declined", "expired", "finished"]


class MessageKind(StrEnum):
    INITIAL_ALERT = "initial_alert"
    PAGE = "page"
    INFORM = "inform"
    ACKNOWLEDGED = "acknowledged"
    STATUS_UPDATE = "status_update"
    SEVERITY_CHANGED = "severity_changed"
    ESCALATED = "escalated"
    RESPONDER_ADDED = "responder_added"
    LADDER_REPEAT = "ladder_repeat"
    LADDER_EXHAUSTED = "ladder_exhausted"
    NO_PROGRESS = "no_progress"
    UPDATE_REMINDER = "update_reminder"
    UPDATE_OVERDUE = "update_overdue"
    STAKEHOLDER_NOTICE = "stakeholder_notice"
    RESOLUTION = "resolution"
    P3_REVIEW = "p3_review"
    POSTMORTEM_SCHEDULED = "postmortem_scheduled"
    POSTMORTEM_REMINDER = "postmortem_reminder"
    DIAGNOSTICS = "diagnostics"
    MITIGATION = "mitigation"


class MessageParams(BaseModel):
    """Fields a template may read. Each kind's model makes its own ones required; the rest
    stay at these defaults, so one rendering context serves every kind."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: ClassVar[MessageKind]

    person: str | None = None  # a roster name: who is paged, informed, reported to, added
    role: Role | None = None  # the role they hold for this message
    level: int | None = None  # 1-based ladder level, as shown: "level 1 of 4"
    window: timedelta | None = None  # time left to acknowledge
    loop: int | None = None  # 1-based pass over the ladder: "pass 2 of 2"
    by: str | None = None  # who acted (roster name or integration)
    message: str | None = None  # a status update's text
    next_steps: str | None = None
    eta: str | None = None
    old: Severity | None = None  # the severity before a change
    reason: str | None = None
    postmortem: str | None = None  # "Review scheduled ..." or "Not required for P2"
    review_at: datetime | None = None
    run: int | None = None  # a diagnostics run's number
    proposal: int | None = None  # a mitigation proposal's number
    event: MitigationEvent | None = None  # what happened to the proposal


class InitialAlertMessage(MessageParams):
    kind = MessageKind.INITIAL_ALERT


class PageMessage(MessageParams):
    kind = MessageKind.PAGE
    person: str
    role: Role
    level: int
    window: timedelta


class InformMessage(MessageParams):
    kind = MessageKind.INFORM
    person: str
    role: Role


class NoProgressMessage(MessageParams):
    kind = MessageKind.NO_PROGRESS
    person: str
    role: Role


class AcknowledgedMessage(MessageParams):
    kind = MessageKind.ACKNOWLEDGED
    by: str


class StatusUpdateMessage(MessageParams):
    kind = MessageKind.STATUS_UPDATE
    by: str
    message: str


class SeverityChangedMessage(MessageParams):
    kind = MessageKind.SEVERITY_CHANGED
    old: Severity
    by: str


class EscalatedMessage(MessageParams):
    kind = MessageKind.ESCALATED
    person: str
    role: Role


class ResponderAddedMessage(MessageParams):
    kind = MessageKind.RESPONDER_ADDED
    person: str


class LadderRepeatMessage(MessageParams):
    kind = MessageKind.LADDER_REPEAT
    loop: int


class LadderExhaustedMessage(MessageParams):
    kind = MessageKind.LADDER_EXHAUSTED


class UpdateReminderMessage(MessageParams):
    kind = MessageKind.UPDATE_REMINDER


class UpdateOverdueMessage(MessageParams):
    kind = MessageKind.UPDATE_OVERDUE
    person: str
    role: Role


class StakeholderNoticeMessage(MessageParams):
    kind = MessageKind.STAKEHOLDER_NOTICE


class ResolutionMessage(MessageParams):
    kind = MessageKind.RESOLUTION
    postmortem: str


class P3ReviewMessage(MessageParams):
    kind = MessageKind.P3_REVIEW


class PostmortemScheduledMessage(MessageParams):
    kind = MessageKind.POSTMORTEM_SCHEDULED
    review_at: datetime


class PostmortemReminderMessage(MessageParams):
    kind = MessageKind.POSTMORTEM_REMINDER
    review_at: datetime


class DiagnosticsMessage(MessageParams):
    kind = MessageKind.DIAGNOSTICS
    run: int


class MitigationMessage(MessageParams):
    kind = MessageKind.MITIGATION
    proposal: int
    event: MitigationEvent


# Every kind has exactly one model (checked by the tests).
PARAMS: dict[MessageKind, type[MessageParams]] = {
    cls.kind: cls for cls in MessageParams.__subclasses__()
}


# ---- maintenance windows: announcements in #incidents, about a window, not an incident ----


class MaintenanceKind(StrEnum):
    STARTED = "maintenance_started"
    ENDED = "maintenance_ended"


class MaintenanceMessage(BaseModel):
    """What a maintenance announcement needs (``domain.templates.render_maintenance_message``).

    Kept apart from :class:`MessageParams`: those are about an incident and render from its
    state; these are about a window, with no incident behind them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: ClassVar[MaintenanceKind]

    window: int
    service: str
    reason: str
    starts_at: datetime
    ends_at: datetime  # as scheduled
    by: str  # who put the service in maintenance (roster name)


class MaintenanceStartedMessage(MaintenanceMessage):
    kind = MaintenanceKind.STARTED


class MaintenanceEndedMessage(MaintenanceMessage):
    kind = MaintenanceKind.ENDED
    ended_at: datetime
    ended_by: str | None = None  # ended early, by this person


MAINTENANCE_PARAMS: dict[MaintenanceKind, type[MaintenanceMessage]] = {
    cls.kind: cls for cls in MaintenanceMessage.__subclasses__()
}


# ---- post-mortem follow-through: the review moved, action items (domain.postmortem) ----


class FollowUpKind(StrEnum):
    REVIEW_RESCHEDULED = "postmortem_rescheduled"
    ITEM_ASSIGNED = "action_item_assigned"
    ITEM_REMINDER = "action_item_reminder"
    ITEM_OVERDUE = "action_item_overdue"  # to the owner
    ITEM_OVERDUE_REPORT = "action_item_overdue_report"  # to the team lead
    ITEM_CLOSED = "action_item_closed"  # to the team lead: please verify
    POSTMORTEM_COMPLETED = "postmortem_completed"


class FollowUpMessage(BaseModel):
    """What a follow-through message needs besides the incident and the policy
    (``domain.postmortem_texts.render_follow_up``). Item fields describe one action item."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: ClassVar[FollowUpKind]

    by: str | None = None  # who acted (roster name)


class ReviewRescheduledMessage(FollowUpMessage):
    kind = FollowUpKind.REVIEW_RESCHEDULED
    review_at: datetime
    old_review_at: datetime
    by: str
    reason: str = ""


class _ItemMessage(FollowUpMessage):
    number: int
    title: str
    owner: str
    due: date
    item_kind: str  # ActionItemKind value


class ItemAssignedMessage(_ItemMessage):
    kind = FollowUpKind.ITEM_ASSIGNED


class ItemReminderMessage(_ItemMessage):
    kind = FollowUpKind.ITEM_REMINDER


class ItemOverdueMessage(_ItemMessage):
    kind = FollowUpKind.ITEM_OVERDUE
    notice: int  # 1 when it goes overdue, then one a week


class ItemOverdueReportMessage(_ItemMessage):
    kind = FollowUpKind.ITEM_OVERDUE_REPORT
    notice: int


class ItemClosedMessage(_ItemMessage):
    kind = FollowUpKind.ITEM_CLOSED
    by: str
    evidence: str


class PostmortemCompletedMessage(FollowUpMessage):
    kind = FollowUpKind.POSTMORTEM_COMPLETED
    by: str
    items: int
