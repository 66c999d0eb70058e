"""TestPageWorkflow: a test notification through each of one person's contact methods, now.

PagerDuty's "Send test notification", for the first week before any handoff has tested
anyone (``firewatch test-page PERSON``, ``POST /people/{name}/test-page``). Each method is
tried on its own (no fallback to the next: each is what is being tested), at most once
(idempotency key ``test-page:<workflow id>:<method>``), for at most ``TRY_FOR``; the result
says which reached its provider and why the others did not.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.heartbeating import HEARTBEAT_TIMEOUT
    from activities.models import DeliveryResult, Notification
    from activities.notify import NotifyActivities
    from domain.handoff import render_test_notification
    from domain.policy import Person

TRY_FOR = timedelta(minutes=2)  # someone is waiting for the answer


class TestPageInput(BaseModel):
    person: Person
    by: str  # who asked, as people read it (the roster label)


class MethodOutcome(BaseModel):
    method: str
    status: Literal["sent", "outbox", "failed"]
    detail: str = ""


class TestPageResult(BaseModel):
    person: str
    outcomes: list[MethodOutcome]


@workflow.defn
class TestPageWorkflow:
    @workflow.run
    async def run(self, inp: TestPageInput) -> TestPageResult:
        tried = await asyncio.gather(*(self._one(inp, m) for m in inp.person.contact_order))
        return TestPageResult(person=inp.person.name, outcomes=list(tried))

    async def _one(self, inp: TestPageInput, method: str) -> MethodOutcome:
        info = workflow.info()
        subject, text = render_test_notification(inp.person, method, inp.by)
        note = Notification(
            idempotency_key=f"test-page:{info.workflow_id}:{method}",
            incident_id=info.workflow_id,
            workflow_id=info.workflow_id,
            kind="test_page",
            recipient=inp.person.name,
            person=inp.person.model_copy(update={"contact_order": (method,)}),
            subject=subject,
            text=text,
            scheduled_at=workflow.now(),
        )
        try:
            result = await workflow.execute_activity_method(
                NotifyActivities.deliver_notification,
                note,
                summary=f"test page → {inp.person.name} via {method}",
                start_to_close_timeout=TRY_FOR,
                schedule_to_close_timeout=TRY_FOR,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
            )
        except ActivityError as err:
            return MethodOutcome(method=method, status="failed", detail=str(err.cause or err))
        return outcome_of(method, result)


def outcome_of(method: str, result: DeliveryResult) -> MethodOutcome:
    if result.channel == "outbox":
        why = f"{method} is not set up here, or they have no address for it"
        return MethodOutcome(method=method, status="outbox", detail=f"{why}: in the outbox only")
    if any(a.status in ("sent", "duplicate") for a in result.attempts):
        return MethodOutcome(method=method, status="sent")
    why = "; ".join(a.detail for a in result.attempts if a.detail) or "not delivered"
    return MethodOutcome(method=method, status="failed", detail=why)
