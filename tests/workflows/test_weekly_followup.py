"""The weekly follow-up's Temporal Schedule (dev server): made once however often the
worker starts, at the policy's weekday and time in the team's zone, gone when switched off.
(The digest over a real lifecycle: tests/cli/test_cli_postmortem_live.py.)"""

from __future__ import annotations

import asyncio
import uuid

from temporalio.client import ScheduleActionStartWorkflow
from temporalio.testing import WorkflowEnvironment

from domain.policy import Policy
from starter.followup_schedule import ensure_followup_schedule


async def test_the_schedule_is_made_once_and_follows_the_policy(
    dev_env: WorkflowEnvironment, default_policy: Policy
) -> None:
    sid = f"weekly-followup-{uuid.uuid4().hex[:6]}"
    client = dev_env.client
    assert await ensure_followup_schedule(client, default_policy, "fw-q", schedule_id=sid)
    # A restart: the same schedule, updated in place.
    assert await ensure_followup_schedule(client, default_policy, "fw-q", schedule_id=sid)
    listed = [s async for s in await client.list_schedules() if s.id == sid]
    for _ in range(50):  # schedules reach visibility a moment later
        if listed:
            break
        await asyncio.sleep(0.1)
        listed = [s async for s in await client.list_schedules() if s.id == sid]
    assert len(listed) == 1
    described = await client.get_schedule_handle(sid).describe()
    spec = described.schedule.spec
    assert spec.time_zone_name == "America/New_York"
    cal = spec.calendars[0]
    assert (cal.hour[0].start, cal.minute[0].start, cal.day_of_week[0].start) == (10, 0, 1)
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "WeeklyFollowUpWorkflow"
    # Switched off in the policy: gone.
    off = default_policy.model_copy(
        update={"followup": default_policy.followup.model_copy(update={"enabled": False})}
    )
    assert not await ensure_followup_schedule(client, off, "fw-q", schedule_id=sid)
    assert not [s async for s in await client.list_schedules() if s.id == sid]
