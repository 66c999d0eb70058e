"""HandoffWorkflow: one weekly handoff of one rotation (started by its Temporal Schedule).

1. Gather the report (``activities.handoff``) for the shift starting at this run's time.
   A handoff already finished (a catch-up run of the same shift) ends here.
2. Send it to the outgoing and the incoming person, and a test page through each contact
   method of the incoming person (idempotency key ``handoff:<id>:test:<person>:<method>``).
3. Wait, up to ``policy.handoff.test_page_window`` from the start, for every test page to
   be acknowledged (``ack_test``: SMS reply, Slack button, ``firewatch ack-test``) and the
   contact details confirmed (``confirm_contact``).
4. Methods not acknowledged by then are reported to the team lead and the outgoing person
   as "routing not verified"; the result is kept (``handoffs`` table).
5. End with the shift-change notice in #incidents.

Started with ``wait_for_handoff`` it first sleeps until the rotation's next handoff (a
handoff started by hand ahead of time; the tests).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.handoff import (
        GatherHandoff,
        HandoffActivities,
        NextHandoff,
        RecordHandoff,
    )
    from activities.heartbeating import HEARTBEAT_TIMEOUT
    from activities.models import Notification
    from activities.notify import NotifyActivities
    from domain.handoff import (
        AckVia,
        HandoffError,
        HandoffReport,
        HandoffResult,
        TestPage,
        acknowledge,
        all_acked,
        render_report,
        render_test_page,
        render_unverified,
        report_subject,
        rich_first,
        shift_change_text,
        test_page_subject,
        unverified,
    )
    from domain.policy import Person, Role

_TIMEOUT = timedelta(seconds=60)
_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
KEEP_TRYING = timedelta(minutes=30)  # a notification later than this is not worth sending
ON_TIME = timedelta(minutes=1)
NO_HANDOFF = timedelta(minutes=10)  # a scheduled time this far from any handoff has none
SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


class HandoffInput(BaseModel):
    role: Role
    wait_for_handoff: bool = False  # sleep until the rotation's next handoff first
    # Started by the rotation's Temporal Schedule: the handoff is the one at the scheduled
    # time (a run delayed by a worker outage still reports that one), and a trigger with
    # no handoff at its time (a daily trigger of a two-week rotation) does nothing.
    from_schedule: bool = False


class AckTest(BaseModel):
    by: str  # roster name of the person whose test page it is
    method: str  # sms, voice, slack, email
    via: AckVia = "cli"


class ConfirmContact(BaseModel):
    by: str
    via: AckVia = "cli"


@workflow.defn
class HandoffWorkflow:
    @workflow.init
    def __init__(self, inp: HandoffInput) -> None:
        self._result: HandoffResult | None = None
        self._version = 0
        self._unrecorded = False  # an ack or confirmation not written to the database yet

    # ---- handlers ----------------------------------------------------------------------------

    @workflow.update
    def ack_test(self, request: AckTest) -> TestPage:
        assert self._result is not None  # the validator saw to it
        pages, done = acknowledge(
            self._result.test_pages, request.by, request.method, workflow.now(), request.via
        )
        self._result = self._result.model_copy(update={"test_pages": pages})
        self._unrecorded = True
        return done

    @ack_test.validator
    def _ack_test_ok(self, request: AckTest) -> None:
        result = self._ready()
        try:
            acknowledge(result.test_pages, request.by, request.method, workflow.now(), request.via)
        except HandoffError as err:
            raise ApplicationError(str(err), type="HandoffError", non_retryable=True) from None

    @workflow.update
    def confirm_contact(self, request: ConfirmContact) -> HandoffResult:
        assert self._result is not None
        if self._result.contact_confirmed_at is None:
            self._result = self._result.model_copy(
                update={
                    "contact_confirmed_at": workflow.now(),
                    "contact_confirmed_via": request.via,
                }
            )
            self._unrecorded = True
        return self._result

    @confirm_contact.validator
    def _confirm_ok(self, request: ConfirmContact) -> None:
        result = self._ready()
        incoming = result.report.incoming.name
        if request.by != incoming:
            raise ApplicationError(
                f"only the incoming person ({incoming}) confirms their contact details",
                type="HandoffError",
                non_retryable=True,
            )

    @workflow.query
    def progress(self) -> HandoffResult | None:
        return self._result

    def _ready(self) -> HandoffResult:
        if self._result is None:
            raise ApplicationError(
                "the handoff has not sent its test pages yet; try again in a moment",
                type="HandoffError",
                non_retryable=True,
            )
        if self._result.status == "finished":
            raise ApplicationError(
                "this handoff is over; its result is kept (firewatch handoff show)",
                type="HandoffError",
                non_retryable=True,
            )
        return self._result

    # ---- the run -----------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: HandoffInput) -> HandoffResult | None:
        if inp.wait_for_handoff:
            at: datetime = await workflow.execute_activity_method(
                HandoffActivities.next_handoff,
                NextHandoff(role=inp.role, after=workflow.now()),
                start_to_close_timeout=_TIMEOUT,
                retry_policy=_RETRY,
            )
            await workflow.sleep(at - workflow.now(), summary=f"{inp.role.value} handoff")
        started = workflow.now()
        scheduled = (
            workflow.info().typed_search_attributes.get(SCHEDULED_START)
            if inp.from_schedule
            else None
        )
        gathered = await workflow.execute_activity_method(
            HandoffActivities.gather,
            GatherHandoff(
                role=inp.role,
                at=scheduled or started,
                now=started,
                workflow_id=workflow.info().workflow_id,
            ),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=_RETRY,
            summary=f"{inp.role.value} handoff report",
        )
        report = gathered.report
        if not gathered.enabled or report is None:
            workflow.logger.info("handoff disabled by the policy")
            return None
        if scheduled is not None and abs(report.shift_start - scheduled) > NO_HANDOFF:
            workflow.logger.info("no %s handoff at %s", inp.role.value, scheduled)
            return None
        if gathered.existing is not None and gathered.existing.status == "finished":
            return gathered.existing  # this shift's handoff ran already
        # On time (a schedule firing, a timer waking), the window counts from the handoff
        # itself; a late run (catching up after an outage) gives the full window from now.
        on_time = abs(started - report.shift_start) <= ON_TIME
        deadline = (report.shift_start if on_time else started) + report.test_page_window
        self._result = HandoffResult(
            handoff_id=report.handoff_id,
            workflow_id=workflow.info().workflow_id,
            role=inp.role,
            status="testing",
            report=report,
            started_at=started,
            deadline=deadline,
            test_pages=[p.model_copy(update={"sent_at": started}) for p in report.test_pages],
        )
        await self._record()

        sends: list[Awaitable[Any]] = []
        text = render_report(report)
        for person in _unique(report.outgoing, report.incoming):
            sends.append(
                self._send(
                    report,
                    "handoff_report",
                    rich_first(person),
                    report_subject(report),
                    text,
                    started,
                )
            )
        for page in report.test_pages:
            sends.append(self._test_page(report, page, started))
        in_flight = [asyncio.ensure_future(s) for s in sends]

        def settled() -> bool:
            result = self._result
            assert result is not None
            return all_acked(result.test_pages) and result.contact_confirmed_at is not None

        # Each acknowledgement is written as it comes: `handoff show` reads the database.
        while not settled() and (remaining := deadline - workflow.now()) > timedelta(0):
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: settled() or self._unrecorded,
                    timeout=remaining,
                    timeout_summary="test pages acknowledged",
                )
            if self._unrecorded and not settled():  # settled: the final record follows
                self._unrecorded = False
                await self._record()
        result = self._result
        assert result is not None
        missing = unverified(result.test_pages, deadline)
        self._result = result = result.model_copy(
            update={"status": "finished", "unverified": missing, "finished_at": workflow.now()}
        )
        await self._record()
        if missing:
            subject, body = render_unverified(report, missing, deadline)
            people = [p for p in (gathered.team_lead, report.outgoing) if p is not None]
            await asyncio.gather(
                *(
                    self._send(report, "handoff_unverified", p, subject, body, deadline)
                    for p in _unique(*people)
                )
            )
        notice = shift_change_text(report.role, report.incoming, report.shift_end, report.timezone)
        await self._deliver(
            Notification(
                idempotency_key=f"handoff:{report.handoff_id}:shift_change:outbox",
                incident_id=report.handoff_id,
                workflow_id=workflow.info().workflow_id,
                kind="shift_change",
                recipient=gathered.incidents_channel,
                subject=notice,
                text=notice + "\n",
                scheduled_at=workflow.now(),
                channel_role="incidents",
            )
        )
        await asyncio.gather(*in_flight)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result

    async def _record(self) -> None:
        assert self._result is not None
        self._version += 1
        await workflow.execute_activity_method(
            HandoffActivities.record,
            RecordHandoff(result=self._result, version=self._version),
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )

    async def _test_page(self, report: HandoffReport, page: TestPage, at: datetime) -> None:
        person = report.incoming if page.person == report.incoming.name else None
        if person is None:  # plan_test_pages only pages the incoming person
            return
        only = person.model_copy(update={"contact_order": (page.method,)})
        await self._deliver(
            Notification(
                idempotency_key=page.key,
                incident_id=report.handoff_id,
                workflow_id=workflow.info().workflow_id,
                kind="handoff_test_page",
                recipient=person.name,
                person=only,
                subject=test_page_subject(page),
                text=render_test_page(page, person, report.handoff_id, report.test_page_window),
                scheduled_at=at,
            )
        )

    async def _send(
        self,
        report: HandoffReport,
        kind: str,
        person: Person,
        subject: str,
        text: str,
        at: datetime,
    ) -> None:
        await self._deliver(
            Notification(
                idempotency_key=f"handoff:{report.handoff_id}:{kind}:{person.name}",
                incident_id=report.handoff_id,
                workflow_id=workflow.info().workflow_id,
                kind=kind,
                recipient=person.name,
                person=person,
                subject=subject,
                text=text,
                scheduled_at=at,
            )
        )

    async def _deliver(self, note: Notification) -> None:
        try:
            await workflow.execute_activity_method(
                NotifyActivities.deliver_notification,
                note,
                summary=f"{note.kind.replace('_', ' ')} → {note.recipient}",
                start_to_close_timeout=_TIMEOUT,
                schedule_to_close_timeout=KEEP_TRYING,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=_RETRY,
            )
        except ActivityError as err:  # a channel down for half an hour: the handoff goes on
            workflow.logger.warning("handoff notification not delivered: %s", err)


def _unique(*people: Person) -> list[Person]:
    seen: set[str] = set()
    found = []
    for person in people:
        if person.name not in seen:
            seen.add(person.name)
            found.append(person)
    return found
