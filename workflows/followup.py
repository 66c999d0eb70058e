"""WeeklyFollowUpWorkflow: the seed's weekly review digest, fired by the ``weekly-followup``
Temporal Schedule (``starter.followup_schedule``) or started by hand.

Two activities: gather the facts at the workflow's time, then send the digest to
#engineering and the team lead (once per ISO week each, by idempotency key, so a retried or
re-run follow-up does not post twice).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.followup import FollowUpActivities, GatherFollowUp, SendFollowUp
    from domain.followup import FollowUpFacts

_TIMEOUT = timedelta(minutes=2)
_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=20)


class FollowUpInput(BaseModel):
    from_schedule: bool = True


@workflow.defn
class WeeklyFollowUpWorkflow:
    @workflow.run
    async def run(self, inp: FollowUpInput) -> FollowUpFacts:
        facts = await workflow.execute_activity_method(
            FollowUpActivities.gather,
            GatherFollowUp(at=workflow.now()),
            summary="Open action items, unfinished post-mortems, open P3s",
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )
        await workflow.execute_activity_method(
            FollowUpActivities.send,
            SendFollowUp(facts=facts, workflow_id=workflow.info().workflow_id),
            summary="Digest to #engineering and the team lead",
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )
        return facts
