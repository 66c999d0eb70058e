"""PostMortemWorkflow: drafts the review document and keeps at it until the review is held.

Started by IncidentWorkflow for P0/P1 with ParentClosePolicy.ABANDON, so it outlives
the incident's workflow.
"""

from __future__ import annotations

import asyncio
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
    from activities.publish import PublishActivities
    from domain.incident import IncidentState
    from domain.messages import (
        MessageParams,
        PostmortemReminderMessage,
        PostmortemScheduledMessage,
    )
    from domain.policy import Policy
    from domain.templates import render_message, render_postmortem_draft

_TIMEOUT = timedelta(seconds=60)
_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))


class PostMortemInput(BaseModel):
    incident: IncidentState
    policy: Policy
    review_at: datetime


class MarkReviewHeld(BaseModel):
    by: str
    notes: str = ""


class PostMortemState(BaseModel):
    incident_id: str
    review_at: datetime
    document_path: str | None = None
    attendees: list[str] = Field(default_factory=list)
    reminders_sent: int = 0
    held_at: datetime | None = None
    held_by: str | None = None
    notes: str = ""


@workflow.defn
class PostMortemWorkflow:
    @workflow.init
    def __init__(self, inp: PostMortemInput) -> None:
        self._inp = inp
        self._state = PostMortemState(
            incident_id=inp.incident.incident_id or inp.incident.workflow_id,
            review_at=inp.review_at,
            attendees=_attendees(inp.incident, inp.policy),
        )

    @workflow.query
    def state(self) -> PostMortemState:
        return self._state

    @workflow.update
    def mark_held(self, req: MarkReviewHeld) -> PostMortemState:
        if self._state.held_at is None:
            self._state.held_at = workflow.now()
            self._state.held_by = req.by
            self._state.notes = req.notes
        return self._state

    @mark_held.validator
    def _validate_mark_held(self, req: MarkReviewHeld) -> None:
        if self._inp.policy.roster.person(req.by) is None:
            raise ApplicationError(
                f"{req.by!r} is not on the roster", type="InvalidTransition", non_retryable=True
            )

    @workflow.run
    async def run(self, inp: PostMortemInput) -> PostMortemState:
        st = self._state
        draft = WriteDocument(
            kind="postmortem",
            incident_id=st.incident_id,
            version=1,
            markdown=render_postmortem_draft(
                inp.incident, inp.policy, workflow.now(), inp.review_at
            ),
        )
        when = f"{inp.review_at:%Y-%m-%d %H:%M} UTC"
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
        deadline = inp.review_at
        while st.held_at is None:
            try:
                wait = max(deadline - workflow.now(), timedelta(0))
                await workflow.wait_condition(
                    lambda: st.held_at is not None,
                    timeout=wait,
                    timeout_summary=f"Review due {when}",
                )
            except TimeoutError:
                st.reminders_sent += 1
                reminder = PostmortemReminderMessage(review_at=inp.review_at)
                step = f"pm-reminder:{st.reminders_sent}"
                await asyncio.gather(*(self._notify(reminder, step, n) for n in st.attendees))
                deadline = workflow.now() + inp.policy.postmortem.reminder_every
        await workflow.wait_condition(workflow.all_handlers_finished)
        return st

    async def _notify(self, params: MessageParams, step: str, recipient: str) -> None:
        await workflow.execute_activity_method(
            NotifyActivities.deliver_notification,
            self._notification(params, step, recipient),
            summary=f"{params.kind.value} → {recipient}",
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )

    def _notification(self, params: MessageParams, step: str, recipient: str) -> Notification:
        inp = self._inp
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


def _attendees(incident: IncidentState, policy: Policy) -> list[str]:
    """The seed's attendees: responders, service owners and engineering management."""
    roster = policy.roster
    names = [*incident.responders, roster.team_lead, roster.engineering_manager]
    return list(dict.fromkeys(n for n in names if roster.person(n) is not None))


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
