"""One Temporal Schedule per rotation (``handoff-primary``, ``handoff-secondary``).

Made from the policy when the worker starts (``worker.main``), so they show on the
Temporal UI's Schedules page and follow policy edits at the next start. Each fires a
``HandoffWorkflow`` at the rotation's handoff wall-clock time in the rotation's time zone
(Temporal applies the zone, so a Monday 09:00 New York handoff stays at 09:00 across DST):
weekly on the handoff weekday when shifts are whole weeks, else daily, the workflow itself
then skipping the days without a handoff.

* Created or updated idempotently: a restart updates the schedules in place (same id), so
  there is never a second one; a schedule paused by hand stays paused.
* Overlap SKIP and a one-day catch-up window: a handoff missed while Temporal was down
  runs once when it is back, and a trigger while a handoff is still running (its worker
  down for a week) is skipped, so a missed handoff runs once on recovery, not once per
  missed trigger.
* ``policy.handoff.enabled: false`` deletes them.
"""

from __future__ import annotations

import logging
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

from domain.handoff import HANDOFF_ROLES
from domain.policy import Policy, Role, Rotation
from domain.schedule import rotation_for
from starter.temporal_schedules import delete_schedule, ensure_schedule
from workflows.handoff import HandoffInput, HandoffWorkflow

log = logging.getLogger(__name__)

CATCHUP_WINDOW = timedelta(days=1)
SCHEDULE_PREFIX = "handoff"


def schedule_id(role: str, prefix: str = SCHEDULE_PREFIX) -> str:
    return f"{prefix}-{role}"


def calendar(rot: Rotation) -> ScheduleCalendarSpec:
    """The rotation's handoff time, weekly on its weekday when shifts are whole weeks."""
    at = rot.start
    weekly = rot.shift_length % timedelta(days=7) == timedelta(0)
    # Temporal counts weekdays from Sunday = 0; Python from Monday = 0.
    weekday = (at.weekday() + 1) % 7
    return ScheduleCalendarSpec(
        second=(ScheduleRange(at.second),),
        minute=(ScheduleRange(at.minute),),
        hour=(ScheduleRange(at.hour),),
        day_of_week=(ScheduleRange(weekday),) if weekly else (ScheduleRange(0, 6),),
        comment=f"{rot.shift_length.days}-day shifts handing over at {at:%H:%M} {rot.timezone}",
    )


def build_schedule(role: str, rot: Rotation, task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            HandoffWorkflow.run,
            HandoffInput(role=Role(role), from_schedule=True),
            id=f"handoff/{role}",  # Temporal appends the scheduled time
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(calendars=[calendar(rot)], time_zone_name=rot.timezone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP_WINDOW),
        state=ScheduleState(note=f"Weekly {role} handoff (Firewatch, from the policy)"),
    )


async def ensure_handoff_schedules(
    client: Client, policy: Policy, task_queue: str, *, prefix: str = SCHEDULE_PREFIX
) -> list[str]:
    """Create or update the handoff schedules; returns their ids (none when disabled)."""
    made: list[str] = []
    for role in HANDOFF_ROLES:
        sid = schedule_id(role, prefix)
        rot = rotation_for(policy.roster, Role(role))
        if not policy.handoff.enabled or rot is None:
            await delete_schedule(client, sid)
            continue
        await ensure_schedule(client, sid, build_schedule(role, rot, task_queue))
        made.append(sid)
    return made
