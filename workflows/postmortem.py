"""PostMortemWorkflow: the post-mortem from its draft to its closure (issue 13).

Started by IncidentWorkflow for P0/P1 with ParentClosePolicy.ABANDON, so it outlives
the incident's workflow. It drafts the document and tells the attendees, reminds them
until the review is held (the review can be rescheduled), records the meeting's notes and
lessons learned, and tracks the action items: it tells each owner when an item is
assigned, reminds them the day before it is due, and tells them and the team lead when it
goes overdue, then weekly. The post-mortem completes once the meeting is held, the
lessons-learned fields are filled and every action item is closed with evidence and
verified by someone other than its owner; until then the workflow stays open, its stage and
open-item count shown in the Temporal UI (current details).

Every change writes a new version of the document and the post-mortem's rows
(``activities.postmortems``); the rules are in ``domain.postmortem``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.documents import DocumentActivities
    from activities.models import Notification, PublishLocally, WriteDocument
    from activities.notify import NotifyActivities
    from activities.postmortems import PostmortemActivities, RecordPostmortem
    from activities.publish import PublishActivities
    from domain import postmortem as rules
    from domain import postmortem_notices as notices
    from domain.incident import IncidentState, TicketFields
    from domain.messages import (
        FollowUpMessage,
        MessageParams,
        PostmortemReminderMessage,
        PostmortemScheduledMessage,
        ReviewRescheduledMessage,
    )
    from domain.policy import Policy
    from domain.postmortem import (
        ActionItem,
        AddActionItem,
        CloseActionItem,
        CompletePostmortem,
        EditActionItem,
        PostmortemError,
        PostmortemProgress,
        RecordMeeting,
        RescheduleReview,
        Stage,
        VerifyActionItem,
    )
    from domain.postmortem_notices import Recipients
    from domain.postmortem_texts import render_follow_up, render_postmortem_document
    from domain.templates import render_message, render_postmortem_draft

_TIMEOUT = timedelta(seconds=60)
_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
# Continue-as-new well before Temporal's limits: a post-mortem can run for months.
_HISTORY_EVENTS = 5_000


class MarkReviewHeld(RecordMeeting):
    """The review took place (``firewatch postmortem-held``); ``notes`` is free text."""

    notes: str = Field(default="", max_length=rules.TEXT_MAX)


class PostMortemState(PostmortemProgress):
    incident_id: str
    attendees: list[str] = Field(default_factory=list)
    reminders_sent: int = 0  # review reminders
    review_reminder_at: datetime | None = None  # the next one, while the review is not held
    notes: str = ""  # free text given with `postmortem-held`
    document_version: int = 0
    record_version: int = 0  # every snapshot written to the database
    stage: Stage = Stage.DRAFT
    open_items: int = 0
    status: str = ""  # stage and open items, one line (the Temporal UI's current details)


class PostMortemInput(BaseModel):
    incident: IncidentState
    policy: Policy
    review_at: datetime
    state: PostMortemState | None = None  # carried over by continue-as-new
    continue_after_events: int = _HISTORY_EVENTS  # tests lower it


def _rejected(err: PostmortemError) -> ApplicationError:
    return ApplicationError(str(err), type="InvalidTransition", non_retryable=True)


@workflow.defn
class PostMortemWorkflow:
    @workflow.init
    def __init__(self, inp: PostMortemInput) -> None:
        self._inp = inp
        self._state = inp.state or PostMortemState(
            incident_id=inp.incident.incident_id or inp.incident.workflow_id,
            review_at=inp.review_at,
            review_reminder_at=inp.review_at,
            attendees=notices.attendees(inp.incident, inp.policy),
        )
        self._rev = 0  # bumped by every change: the main loop re-plans its timers

    @workflow.query
    def state(self) -> PostMortemState:
        return self._state

    # ---- updates ----------------------------------------------------------------------

    def _check(self, validate: Callable[[], None]) -> None:
        try:
            validate()
        except PostmortemError as err:
            raise _rejected(err) from None

    @workflow.update
    async def mark_held(self, req: MarkReviewHeld) -> PostMortemState:
        st = self._state
        if st.held_at is None:
            rules.record_meeting(st, req, workflow.now())
            st.notes = req.notes
            await self._changed([])
        return st

    @mark_held.validator
    def _validate_mark_held(self, req: MarkReviewHeld) -> None:
        if self._inp.policy.roster.person(req.by) is None:
            raise ApplicationError(
                f"{req.by!r} is not on the roster", type="InvalidTransition", non_retryable=True
            )

    @workflow.update
    async def reschedule_review(self, req: RescheduleReview) -> PostMortemState:
        st = self._state
        old = st.review_at
        rules.reschedule(st, req)
        st.review_reminder_at = req.review_at
        moved = ReviewRescheduledMessage(
            by=req.by, review_at=req.review_at, old_review_at=old, reason=req.reason
        )
        step = f"pm-rescheduled:{st.reschedules}"
        await self._changed([(moved, step, name) for name in st.attendees])
        return st

    @reschedule_review.validator
    def _validate_reschedule(self, req: RescheduleReview) -> None:
        self._check(
            lambda: rules.validate_reschedule(self._state, req, self._inp.policy, workflow.now())
        )

    @workflow.update
    async def record_meeting(self, req: RecordMeeting) -> PostMortemState:
        rules.record_meeting(self._state, req, workflow.now())
        await self._changed([])
        return self._state

    @record_meeting.validator
    def _validate_meeting(self, req: RecordMeeting) -> None:
        self._check(lambda: rules.validate_meeting(self._state, req, self._inp.policy))

    @workflow.update
    async def add_action_item(self, req: AddActionItem) -> ActionItem:
        item = rules.add_item(self._state, req, self._inp.policy, workflow.now())
        await self._changed(notices.assigned(item, req.by))
        return item

    @add_action_item.validator
    def _validate_add(self, req: AddActionItem) -> None:
        self._check(lambda: rules.validate_add(self._state, req, self._inp.policy, workflow.now()))

    @workflow.update
    async def edit_action_item(self, req: EditActionItem) -> ActionItem:
        new_owner = rules.edit_item(self._state, req, self._inp.policy, workflow.now())
        item = self._state.item(req.number)
        assert item is not None
        await self._changed(notices.assigned(item, req.by) if new_owner else [])
        return item

    @edit_action_item.validator
    def _validate_edit(self, req: EditActionItem) -> None:
        self._check(lambda: rules.validate_edit(self._state, req, self._inp.policy, workflow.now()))

    @workflow.update
    async def close_action_item(self, req: CloseActionItem) -> ActionItem:
        item = rules.close_item(self._state, req, workflow.now())
        await self._changed(notices.closed(item, req.by, self._inp.policy))
        return item

    @close_action_item.validator
    def _validate_close(self, req: CloseActionItem) -> None:
        self._check(lambda: rules.validate_close(self._state, req, self._inp.policy))

    @workflow.update
    async def verify_action_item(self, req: VerifyActionItem) -> ActionItem:
        st = self._state
        item = rules.verify_item(st, req, workflow.now())
        tell: Recipients = []
        if rules.completes_by_itself(st):
            rules.complete(st, req.by, workflow.now())
            tell = notices.completed(req.by, len(self._state.items), self._state.attendees)
        await self._changed(tell)
        return item

    @verify_action_item.validator
    def _validate_verify(self, req: VerifyActionItem) -> None:
        self._check(lambda: rules.validate_verify(self._state, req, self._inp.policy))

    @workflow.update
    async def complete(self, req: CompletePostmortem) -> PostMortemState:
        rules.complete(self._state, req.by, workflow.now())
        await self._changed(
            notices.completed(req.by, len(self._state.items), self._state.attendees)
        )
        return self._state

    @complete.validator
    def _validate_complete(self, req: CompletePostmortem) -> None:
        self._check(lambda: rules.validate_complete(self._state, req, self._inp.policy))

    @workflow.signal
    async def ticket_edited(self, ticket: TicketFields) -> None:
        """The closed incident's ticket was edited (``firewatch ticket``, after resolution):
        the document's Prevention Measures and Lessons Learned show it from the next version."""
        if self._state.completed_at is not None or ticket == self._inp.incident.ticket:
            return
        incident = self._inp.incident.model_copy(update={"ticket": ticket})
        self._inp = self._inp.model_copy(update={"incident": incident})
        await self._changed([])

    # ---- the run ----------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: PostMortemInput) -> PostMortemState:
        st = self._state
        if st.document_path is None:
            await self._draft(inp)
        self._refresh()
        hours = inp.policy.business_hours
        while st.completed_at is None:
            if workflow.info().get_current_history_length() > inp.continue_after_events or (
                workflow.info().is_continue_as_new_suggested()
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(  # self._inp: it has the ticket's later edits
                    self._inp.model_copy(update={"review_at": st.review_at, "state": st})
                )
            seen = self._rev
            wake = [t for t in (st.review_reminder_at, rules.next_wakeup(st, hours)) if t]
            wait = max(min(wake) - workflow.now(), timedelta(0)) if wake else None
            try:
                await workflow.wait_condition(
                    lambda: self._rev != seen or st.completed_at is not None,  # noqa: B023
                    timeout=wait,
                    timeout_summary=self._timer_summary(),
                )
            except TimeoutError:
                await self._on_timer()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return st

    async def _draft(self, inp: PostMortemInput) -> None:
        st = self._state
        st.document_version = 1
        draft = WriteDocument(
            kind="postmortem",
            incident_id=st.incident_id,
            version=1,
            markdown=render_postmortem_draft(
                inp.incident, inp.policy, workflow.now(), inp.review_at
            ),
        )
        scheduled = PostmortemScheduledMessage(review_at=inp.review_at)
        tell = [(scheduled, "pm-scheduled", name) for name in st.attendees]
        if inp.incident.local_delivery:  # outbox only: one local write
            published = await workflow.execute_local_activity_method(
                PublishActivities.publish_locally,
                PublishLocally(
                    notifications=[self._notification(*args) for args in tell],
                    document=draft,
                ),
                summary="Draft post-mortem, tell the attendees",
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            )
            assert published.document is not None
            st.document_path = published.document.path
        else:
            written = await workflow.execute_activity_method(
                DocumentActivities.write_document,
                draft,
                summary="Draft post-mortem",
                start_to_close_timeout=_TIMEOUT,
                retry_policy=_RETRY,
            )
            st.document_path = written.path
            await asyncio.gather(*(self._notify(*args) for args in tell))
        self._refresh()
        await self._record()

    async def _on_timer(self) -> None:
        st, policy, now = self._state, self._inp.policy, workflow.now()
        tell: Recipients = []
        if (
            st.held_at is None
            and st.review_reminder_at is not None
            and st.review_reminder_at <= now
        ):
            st.reminders_sent += 1
            reminder = PostmortemReminderMessage(review_at=st.review_at)
            step = f"pm-reminder:{st.reminders_sent}"
            tell += [(reminder, step, name) for name in st.attendees]
            st.review_reminder_at = now + policy.postmortem.reminder_every
        for notice in rules.due_notices(st.items, policy.business_hours, now):
            item = st.item(notice.number)
            assert item is not None
            tell += notices.item_notice(item, notice, self._inp.policy)
            rules.record_notice(item, notice)
        if tell:
            # Reminders change no document; overdue items show as such in the next version.
            await asyncio.gather(*(self._notify(*args) for args in tell))
            self._refresh()
            await self._record()

    # ---- effects ----------------------------------------------------------------------

    async def _changed(self, tell: Recipients) -> None:
        """After a change: tell who needs telling, write the document's next version and
        the post-mortem's rows, all at once."""
        st = self._state
        self._rev += 1
        if st.held_at is not None:
            st.review_reminder_at = None
        st.document_version += 1
        self._refresh()
        inp = self._inp
        document = WriteDocument(
            kind="postmortem",
            incident_id=st.incident_id,
            version=st.document_version,
            markdown=render_postmortem_document(inp.incident, inp.policy, workflow.now(), st),
        )
        await asyncio.gather(
            workflow.execute_activity_method(
                DocumentActivities.write_document,
                document,
                summary=f"Post-mortem v{st.document_version}",
                start_to_close_timeout=_TIMEOUT,
                retry_policy=_RETRY,
            ),
            self._record(),
            *(self._notify(*args) for args in tell),
        )

    async def _record(self) -> None:
        st, inc = self._state, self._inp.incident
        st.record_version += 1
        await workflow.execute_activity_method(
            PostmortemActivities.record_postmortem,
            RecordPostmortem(
                incident_id=st.incident_id,
                workflow_id=workflow.info().workflow_id,
                severity=inc.severity.value,
                service=inc.service,
                summary=inc.summary,
                resolved_at=inc.resolved_at,
                timezone=self._inp.policy.business_hours.timezone,
                version=st.record_version,
                state=PostmortemProgress.model_validate(st.model_dump()),
                at=workflow.now(),
            ),
            summary=f"Record post-mortem ({st.status})",
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )

    def _refresh(self) -> None:
        st = self._state
        st.stage = rules.stage(st)
        st.open_items = rules.open_items(st)
        st.status = rules.status_line(st)
        workflow.set_current_details(
            f"**Post-mortem** {st.incident_id}: {st.status}\n\n"
            f"Review: {st.review_at:%Y-%m-%d %H:%M} UTC"
            + (f", held {st.held_at:%Y-%m-%d %H:%M} UTC" if st.held_at else "")
        )

    def _timer_summary(self) -> str:
        st = self._state
        if st.held_at is None:
            return f"Review due {st.review_at:%Y-%m-%d %H:%M} UTC"
        return f"Next action-item notice ({st.open_items} open)"

    async def _notify(
        self, params: MessageParams | FollowUpMessage, step: str, recipient: str
    ) -> None:
        await workflow.execute_activity_method(
            NotifyActivities.deliver_notification,
            self._notification(params, step, recipient),
            summary=f"{params.kind.value} → {recipient}",
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )

    def _notification(
        self, params: MessageParams | FollowUpMessage, step: str, recipient: str
    ) -> Notification:
        inp = self._inp
        if isinstance(params, FollowUpMessage):
            message = render_follow_up(params, inp.incident, inp.policy, workflow.now())
        else:
            message = render_message(params, inp.incident, inp.policy, workflow.now())
        return Notification(
            idempotency_key=f"{self._state.incident_id}:{step}:{recipient}:outbox",
            incident_id=self._state.incident_id,
            workflow_id=workflow.info().workflow_id,
            kind=params.kind.value,
            recipient=recipient,
            person=inp.policy.roster.person(recipient),
            subject=message.subject,
            text=message.text,
            scheduled_at=workflow.now(),
        )


async def start_postmortem(st: IncidentState, policy: Policy, review_at: datetime) -> str | None:
    """Start the incident's post-mortem child, which outlives it; or say why it did not start."""
    assert st.postmortem_workflow_id is not None
    try:
        await workflow.start_child_workflow(
            PostMortemWorkflow.run,
            PostMortemInput(incident=st, policy=policy, review_at=review_at),
            id=st.postmortem_workflow_id,
            parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=f"Post-mortem · {st.incident_id} · {st.summary}"[:200],
        )
    except WorkflowAlreadyStartedError:
        # Only when INC ids were reused (the worker lost its data dir): the resolution
        # stands, and the timeline says why no post-mortem started.
        return f"Post-mortem not started: {st.postmortem_workflow_id} already exists"
    return None
