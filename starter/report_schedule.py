"""The ``monthly-report`` Temporal Schedule, made from the policy when the worker starts: on
the first of each month at ``policy.reports.at`` in the business-hours time zone, it runs
``MonthlyReportWorkflow`` for the month before. Overlap SKIP and a one-day catch-up window:
a run missed while Temporal was down runs once when it is back. ``reports.enabled: false``
deletes it.
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
from workflows.monthly_report import MonthlyReportWorkflow

SCHEDULE_ID = "monthly-report"


def report_schedule(policy: Policy, task_queue: str) -> Schedule:
    at, zone = policy.reports.at, policy.business_hours.timezone
    return Schedule(
        action=ScheduleActionStartWorkflow(
            MonthlyReportWorkflow.run, id="report/monthly", task_queue=task_queue
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    second=(ScheduleRange(0),),
                    minute=(ScheduleRange(at.minute),),
                    hour=(ScheduleRange(at.hour),),
                    day_of_month=(ScheduleRange(1),),
                    comment=f"the 1st at {at:%H:%M} {zone}",
                )
            ],
            time_zone_name=zone,
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
        state=ScheduleState(note="Monthly incident report (Firewatch, from the policy)"),
    )


async def ensure_report_schedule(
    client: Client, policy: Policy, task_queue: str, *, schedule_id: str = SCHEDULE_ID
) -> bool:
    """Create or update the schedule (delete it when switched off). True: it exists."""
    if not policy.reports.enabled:
        await delete_schedule(client, schedule_id)
        return False
    await ensure_schedule(client, schedule_id, report_schedule(policy, task_queue))
    return True
