"""The post-mortem's follow-through (issue 13): stages, action items and the rules on them.

The seed's post-incident process: a review within 48 h, notes on its agenda and the lessons
learned, action items with owners and due dates followed up weekly, and closure with
verification. Everything here is pure: the caller passes ``now`` and the policy; the
workflow (``workflows.postmortem``) validates each request with these functions, applies
it with them, and asks them when the next reminder is due.

Times: an action item is due on a date in the team's time zone
(``policy.business_hours.timezone``). It is **overdue** from the end of that day (local
midnight). Its owner is **reminded** at the start of business hours on the day before,
**told** (and the team lead with them) when it goes overdue, and again every
``FOLLOW_UP_EVERY`` (the seed's weekly follow-up) until it is closed.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from domain.policy import BusinessHours, Policy

FOLLOW_UP_EVERY = timedelta(days=7)
REMIND_DAYS_BEFORE = 1
TITLE_MAX = 200
TEXT_MAX = 4000


class PostmortemError(ValueError):
    """A request the post-mortem rejects; the message says why, in one line."""


class Stage(StrEnum):
    DRAFT = "draft"
    REVIEW_SCHEDULED = "review_scheduled"
    MEETING_HELD = "meeting_held"
    ACTION_ITEMS = "action_items"
    COMPLETE = "complete"


STAGE_TITLES: dict[Stage, str] = {
    Stage.DRAFT: "Draft",
    Stage.REVIEW_SCHEDULED: "Review scheduled",
    Stage.MEETING_HELD: "Meeting held",
    Stage.ACTION_ITEMS: "Action items tracked",
    Stage.COMPLETE: "Complete",
}


class ActionItemKind(StrEnum):
    PREVENTION = "prevention"
    MONITORING = "monitoring"
    RUNBOOK = "runbook"
    PROCESS = "process"
    TRAINING = "training"


KIND_TITLES: dict[ActionItemKind, str] = {
    ActionItemKind.PREVENTION: "Prevention",
    ActionItemKind.MONITORING: "Monitoring improvement",
    ActionItemKind.RUNBOOK: "Runbook update",
    ActionItemKind.PROCESS: "Process change",
    ActionItemKind.TRAINING: "Training",
}


def parse_kind(text: str) -> ActionItemKind:
    """``monitoring``, ``Monitoring improvement``, ``runbook-update``: the kind meant."""
    key = " ".join(text.replace("-", " ").replace("_", " ").lower().split())
    for kind, title in KIND_TITLES.items():
        if key in (kind.value, title.lower()):
            return kind
    choices = ", ".join(k.value for k in ActionItemKind)
    raise PostmortemError(f"unknown kind {text!r} (one of: {choices})")


class ItemStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # done, with evidence; awaiting verification
    VERIFIED = "verified"


class ActionItem(BaseModel):
    number: int  # 1-based, per post-mortem
    title: str
    owner: str  # a roster name
    due: date  # in the team's time zone
    kind: ActionItemKind
    status: ItemStatus = ItemStatus.OPEN
    created_by: str
    created_at: datetime
    updated_at: datetime
    assignments: int = 1  # owner changes count up: each new owner is told once
    closed_by: str | None = None
    closed_at: datetime | None = None
    evidence: str | None = None
    verified_by: str | None = None
    verified_at: datetime | None = None
    reminded: bool = False  # the before-due reminder went out (or was moot)
    overdue_notices: int = 0


class MeetingNotes(BaseModel):
    """The seed's agenda and its Lessons Learned section."""

    timeline_review: str = ""
    root_cause_analysis: str = ""
    action_item_assignment: str = ""
    process_improvements: str = ""
    what_went_well: str = ""
    areas_for_improvement: str = ""


AGENDA_FIELDS: tuple[tuple[str, str], ...] = (
    ("timeline_review", "Timeline review"),
    ("root_cause_analysis", "Root cause analysis"),
    ("action_item_assignment", "Action item assignment"),
    ("process_improvements", "Process improvements"),
)
LESSONS_FIELDS: tuple[tuple[str, str], ...] = (
    ("what_went_well", "What went well"),
    ("areas_for_improvement", "Areas for improvement"),
)


class PostmortemProgress(BaseModel):
    """What the rules read: the review, the notes and the action items."""

    review_at: datetime
    document_path: str | None = None
    held_at: datetime | None = None
    held_by: str | None = None
    meeting: MeetingNotes = Field(default_factory=MeetingNotes)
    items: list[ActionItem] = Field(default_factory=list)
    reschedules: int = 0
    completed_at: datetime | None = None
    completed_by: str | None = None

    def item(self, number: int) -> ActionItem | None:
        return next((i for i in self.items if i.number == number), None)


# ---- requests ----------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str = Field(min_length=1, max_length=64)


class RescheduleReview(_Request):
    review_at: datetime
    reason: str = Field(default="", max_length=500)


class RecordMeeting(_Request):
    """Notes for the agenda and lessons learned; None leaves a field as it is.

    The first call marks the review held (now, by ``by``); later ones amend the notes."""

    timeline_review: str | None = Field(default=None, max_length=TEXT_MAX)
    root_cause_analysis: str | None = Field(default=None, max_length=TEXT_MAX)
    action_item_assignment: str | None = Field(default=None, max_length=TEXT_MAX)
    process_improvements: str | None = Field(default=None, max_length=TEXT_MAX)
    what_went_well: str | None = Field(default=None, max_length=TEXT_MAX)
    areas_for_improvement: str | None = Field(default=None, max_length=TEXT_MAX)


class AddActionItem(_Request):
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    owner: str = Field(min_length=1, max_length=64)
    due: date
    kind: ActionItemKind


class EditActionItem(_Request):
    number: int = Field(ge=1)
    title: str | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    owner: str | None = Field(default=None, min_length=1, max_length=64)
    due: date | None = None
    kind: ActionItemKind | None = None


class CloseActionItem(_Request):
    number: int = Field(ge=1)
    evidence: str = Field(min_length=1, max_length=TEXT_MAX)  # a link or a sentence


class VerifyActionItem(_Request):
    number: int = Field(ge=1)


class CompletePostmortem(_Request):
    pass


# ---- time --------------------------------------------------------------------------------


def local_today(now: datetime, hours: BusinessHours) -> date:
    return now.astimezone(ZoneInfo(hours.timezone)).date()


def due_at(due: date, hours: BusinessHours) -> datetime:
    """When an item due on ``due`` becomes overdue: the local midnight ending that day."""
    zone = ZoneInfo(hours.timezone)
    return datetime.combine(due + timedelta(days=1), time(0), tzinfo=zone)


def reminder_at(due: date, hours: BusinessHours) -> datetime:
    """The before-due reminder: business hours' start, the day before the due date."""
    zone = ZoneInfo(hours.timezone)
    return datetime.combine(due - timedelta(days=REMIND_DAYS_BEFORE), hours.start, tzinfo=zone)


def is_overdue(item: ActionItem, hours: BusinessHours, now: datetime) -> bool:
    return item.status == ItemStatus.OPEN and now >= due_at(item.due, hours)


def closed_on_time(item: ActionItem, hours: BusinessHours) -> bool | None:
    """Closed by the end of its due date (None while open): the monthly metric."""
    if item.closed_at is None:
        return None
    return item.closed_at < due_at(item.due, hours)


NoticeEvent = Literal["reminder", "overdue"]


class Notice(BaseModel):
    """A reminder or overdue notice due for one item. ``count`` numbers overdue notices."""

    number: int
    event: NoticeEvent
    at: datetime
    count: int = 0


def next_notice(item: ActionItem, hours: BusinessHours) -> Notice | None:
    """The item's next reminder or overdue notice, whenever it falls; None once closed."""
    if item.status != ItemStatus.OPEN:
        return None
    due = due_at(item.due, hours)
    if not item.reminded:
        remind = reminder_at(item.due, hours)
        if remind < due:
            return Notice(number=item.number, event="reminder", at=remind)
    count = item.overdue_notices
    return Notice(
        number=item.number, event="overdue", at=due + FOLLOW_UP_EVERY * count, count=count + 1
    )


def due_notices(items: list[ActionItem], hours: BusinessHours, now: datetime) -> list[Notice]:
    """Notices due at ``now``, one per item at most; a reminder that is overtaken by the
    item going overdue is skipped (the overdue notice says more)."""
    due: list[Notice] = []
    for item in items:
        notice = next_notice(item, hours)
        if notice is None or notice.at > now:
            continue
        if notice.event == "reminder" and now >= due_at(item.due, hours):
            count = item.overdue_notices
            notice = Notice(
                number=item.number, event="overdue", at=due_at(item.due, hours), count=count + 1
            )
        due.append(notice)
    return due


def record_notice(item: ActionItem, notice: Notice) -> None:
    item.reminded = True
    if notice.event == "overdue":
        item.overdue_notices = notice.count


def next_wakeup(pm: PostmortemProgress, hours: BusinessHours) -> datetime | None:
    """The soonest notice of any item (None when no item waits for one)."""
    times = [n.at for n in (next_notice(i, hours) for i in pm.items) if n is not None]
    return min(times, default=None)


# ---- stages and completion ---------------------------------------------------------------


def lessons_filled(meeting: MeetingNotes) -> bool:
    return bool(meeting.what_went_well.strip() and meeting.areas_for_improvement.strip())


def missing_for_completion(pm: PostmortemProgress) -> list[str]:
    """What still keeps the post-mortem open, in words (empty: it can complete)."""
    missing: list[str] = []
    if pm.held_at is None:
        missing.append("the review meeting is not marked held")
    for field, label in LESSONS_FIELDS:
        if not getattr(pm.meeting, field).strip():
            missing.append(f"lessons learned: {label.lower()!r} is empty")
    for item in pm.items:
        if item.status == ItemStatus.OPEN:
            missing.append(f"action item #{item.number} is open")
        elif item.status == ItemStatus.CLOSED:
            missing.append(f"action item #{item.number} is not verified")
    return missing


def completes_by_itself(pm: PostmortemProgress) -> bool:
    """The last verification completes a post-mortem that has action items; one without
    any is completed by hand (``CompletePostmortem``), so it does not close at the meeting."""
    return pm.completed_at is None and bool(pm.items) and not missing_for_completion(pm)


def open_items(pm: PostmortemProgress) -> int:
    """Items not verified yet (open, or closed and awaiting verification)."""
    return sum(1 for i in pm.items if i.status != ItemStatus.VERIFIED)


def stage(pm: PostmortemProgress) -> Stage:
    if pm.completed_at is not None:
        return Stage.COMPLETE
    if pm.held_at is None:
        return Stage.REVIEW_SCHEDULED if pm.document_path is not None else Stage.DRAFT
    if open_items(pm):
        return Stage.ACTION_ITEMS
    return Stage.MEETING_HELD


def status_line(pm: PostmortemProgress) -> str:
    """One line for the Temporal UI and lists: ``Action items tracked · 2 open of 3``."""
    text = STAGE_TITLES[stage(pm)]
    if pm.items:
        text += f" · {open_items(pm)} open of {len(pm.items)}"
    return text


# ---- validation --------------------------------------------------------------------------


def _on_roster(policy: Policy, name: str, what: str) -> None:
    if policy.roster.person(name) is None:
        known = ", ".join(p.name for p in policy.roster.people)
        raise PostmortemError(f"{what} {name!r} is not on the roster (one of: {known})")


def _not_complete(pm: PostmortemProgress) -> None:
    if pm.completed_at is not None:
        raise PostmortemError("the post-mortem is complete; nothing can change any more")


def _due_ok(due: date, policy: Policy, now: datetime) -> None:
    today = local_today(now, policy.business_hours)
    if due < today:
        raise PostmortemError(
            f"due date {due.isoformat()} is in the past (today is {today.isoformat()}"
            f" in {policy.business_hours.timezone})"
        )


def _item(pm: PostmortemProgress, number: int) -> ActionItem:
    item = pm.item(number)
    if item is None:
        have = f"#1-#{len(pm.items)}" if pm.items else "none yet"
        raise PostmortemError(f"no action item #{number} (items: {have})")
    return item


def validate_reschedule(
    pm: PostmortemProgress, req: RescheduleReview, policy: Policy, now: datetime
) -> None:
    _on_roster(policy, req.by, "by:")
    _not_complete(pm)
    if pm.held_at is not None:
        raise PostmortemError("the review was held already; it cannot be rescheduled")
    if req.review_at.tzinfo is None:
        raise PostmortemError("review_at needs a time zone (for example 2026-12-01T14:00Z)")
    if req.review_at <= now:
        raise PostmortemError(f"review_at {req.review_at.isoformat()} is not in the future")


def validate_meeting(pm: PostmortemProgress, req: RecordMeeting, policy: Policy) -> None:
    _on_roster(policy, req.by, "by:")
    _not_complete(pm)


def validate_add(pm: PostmortemProgress, req: AddActionItem, policy: Policy, now: datetime) -> None:
    _on_roster(policy, req.by, "by:")
    _not_complete(pm)
    if not req.title.strip():
        raise PostmortemError("an action item needs a title")
    _on_roster(policy, req.owner, "owner")
    _due_ok(req.due, policy, now)


def validate_edit(
    pm: PostmortemProgress, req: EditActionItem, policy: Policy, now: datetime
) -> None:
    _on_roster(policy, req.by, "by:")
    _not_complete(pm)
    item = _item(pm, req.number)
    if item.status == ItemStatus.VERIFIED:
        raise PostmortemError(f"action item #{item.number} is verified; it cannot change")
    if req.title is not None and not req.title.strip():
        raise PostmortemError("an action item needs a title")
    if req.owner is not None:
        _on_roster(policy, req.owner, "owner")
    if req.due is not None and req.due != item.due:
        _due_ok(req.due, policy, now)
    if all(v is None for v in (req.title, req.owner, req.due, req.kind)):
        raise PostmortemError("nothing to change: give a title, owner, due date or kind")


def validate_close(pm: PostmortemProgress, req: CloseActionItem, policy: Policy) -> None:
    _on_roster(policy, req.by, "by:")
    _not_complete(pm)
    item = _item(pm, req.number)
    if item.status != ItemStatus.OPEN:
        raise PostmortemError(f"action item #{item.number} is {item.status.value} already")
    if not req.evidence.strip():
        raise PostmortemError("closing an action item needs evidence (a link or a sentence)")


def validate_verify(pm: PostmortemProgress, req: VerifyActionItem, policy: Policy) -> None:
    _on_roster(policy, req.by, "by:")
    _not_complete(pm)
    item = _item(pm, req.number)
    if item.status == ItemStatus.OPEN:
        raise PostmortemError(f"action item #{item.number} is open: close it with evidence first")
    if item.status == ItemStatus.VERIFIED:
        raise PostmortemError(f"action item #{item.number} is verified already")
    if req.by == item.owner:
        raise PostmortemError(
            f"action item #{item.number} must be verified by someone other than its owner"
            f" ({item.owner})"
        )


def validate_complete(pm: PostmortemProgress, req: CompletePostmortem, policy: Policy) -> None:
    _on_roster(policy, req.by, "by:")
    _not_complete(pm)
    missing = missing_for_completion(pm)
    if missing:
        raise PostmortemError("the post-mortem cannot complete: " + "; ".join(missing))


# ---- applying (after validation) ---------------------------------------------------------


def reschedule(pm: PostmortemProgress, req: RescheduleReview) -> None:
    pm.review_at = req.review_at
    pm.reschedules += 1


def record_meeting(pm: PostmortemProgress, req: RecordMeeting, now: datetime) -> None:
    if pm.held_at is None:
        pm.held_at, pm.held_by = now, req.by
    changes = {
        field: value.strip()
        for field, _ in (*AGENDA_FIELDS, *LESSONS_FIELDS)
        if (value := getattr(req, field)) is not None
    }
    pm.meeting = pm.meeting.model_copy(update=changes)


def add_item(
    pm: PostmortemProgress, req: AddActionItem, policy: Policy, now: datetime
) -> ActionItem:
    item = ActionItem(
        number=len(pm.items) + 1,
        title=" ".join(req.title.split()),
        owner=req.owner,
        due=req.due,
        kind=req.kind,
        created_by=req.by,
        created_at=now,
        updated_at=now,
    )
    _skip_missed_reminder(item, policy, now)
    pm.items.append(item)
    return item


def edit_item(pm: PostmortemProgress, req: EditActionItem, policy: Policy, now: datetime) -> bool:
    """Apply an edit; True when the owner changed (the new owner is told)."""
    item = _item(pm, req.number)
    new_owner = req.owner is not None and req.owner != item.owner
    if req.title is not None:
        item.title = " ".join(req.title.split())
    if req.kind is not None:
        item.kind = req.kind
    if new_owner:
        assert req.owner is not None
        item.owner = req.owner
        item.assignments += 1
    if req.due is not None and req.due != item.due:
        item.due = req.due
        item.reminded, item.overdue_notices = False, 0
        _skip_missed_reminder(item, policy, now)
    item.updated_at = now
    return new_owner


def close_item(pm: PostmortemProgress, req: CloseActionItem, now: datetime) -> ActionItem:
    item = _item(pm, req.number)
    item.status = ItemStatus.CLOSED
    item.closed_by, item.closed_at, item.evidence = req.by, now, req.evidence.strip()
    item.updated_at = now
    return item


def verify_item(pm: PostmortemProgress, req: VerifyActionItem, now: datetime) -> ActionItem:
    item = _item(pm, req.number)
    item.status = ItemStatus.VERIFIED
    item.verified_by, item.verified_at = req.by, now
    item.updated_at = now
    return item


def complete(pm: PostmortemProgress, by: str, now: datetime) -> None:
    pm.completed_at, pm.completed_by = now, by


def _skip_missed_reminder(item: ActionItem, policy: Policy, now: datetime) -> None:
    """An item added (or moved) after its reminder time gets no late reminder: the
    assignment notice already names the due date."""
    if now >= reminder_at(item.due, policy.business_hours):
        item.reminded = True
