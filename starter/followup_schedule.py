"""The ``weekly-followup`` Temporal Schedule, made from the policy when the worker starts.

It fires ``WeeklyFollowUpWorkflow`` at ``policy.followup.at`` on ``policy.followup.weekday``
in the business-hours time zone (Temporal applies the zone across DST). Overlap SKIP and a
one-day catch-up window: a run missed while Temporal was down runs once when it is back,
not once per missed week; and a run whose worker was down waits on the task queue and runs
once when the worker returns. ``followup.enabled: false`` deletes it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)

from domain.policy import Policy
from starter.temporal_schedules import delete_schedule, ensure_schedule
from workflows.followup import FollowUpInput, WeeklyFollowUpWorkflow

SCHEDULE_ID = "weekly-followup"
_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


def followup_schedule(policy: Policy, task_queue: str) -> Schedule:
    when = policy.followup
    zone = policy.business_hours.timezone
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WeeklyFollowUpWorkflow.run,
            FollowUpInput(),
            id="followup/weekly",  # Temporal appends the scheduled time
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    second=(ScheduleRange(0),),
                    minute=(ScheduleRange(when.at.minute),),
                    hour=(ScheduleRange(when.at.hour),),
                    day_of_week=(ScheduleRange(_DAYS.index(when.weekday)),),
                    comment=f"{when.weekday.title()} {when.at:%H:%M} {zone}",
                )
            ],
            time_zone_name=zone,
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
        state=ScheduleState(note="Weekly follow-up digest (Firewatch, from the policy)"),
    )


async def ensure_followup_schedule(
    client: Client, policy: Policy, task_queue: str, *, schedule_id: str = SCHEDULE_ID
) -> bool:
    """Create or update the schedule (delete it when switched off). True: it exists."""
    if not policy.followup.enabled:
        await delete_schedule(client, schedule_id)
        return False
    await ensure_schedule(client, schedule_id, followup_schedule(policy, task_queue))
    return True
