"""The handoff's Temporal Schedules on the dev server: made at start-up, one per rotation,
updated in place by a restart (never duplicated), removed when the policy disables it."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment

from activities.config import PolicyStore
from domain.policy import HandoffPolicy, Policy
from starter.handoff_schedules import CATCHUP_WINDOW, ensure_handoff_schedules
from tests.dev.support import wait_for
from worker import _ensure_schedules

PREFIX = f"handoff-test{uuid.uuid4().hex[:6]}"


async def _listed(client: Client) -> list[str]:
    return sorted([s.id async for s in await client.list_schedules() if s.id.startswith(PREFIX)])


async def test_schedules_exist_after_start_up_and_survive_a_restart(
    dev_env: WorkflowEnvironment, default_policy: Policy
) -> None:
    client = dev_env.client
    made = await ensure_handoff_schedules(client, default_policy, "fw-queue-1", prefix=PREFIX)
    assert made == [f"{PREFIX}-primary", f"{PREFIX}-secondary"]
    desc = await client.get_schedule_handle(f"{PREFIX}-primary").describe()
    spec = desc.schedule.spec
    assert spec.time_zone_name == "America/New_York"
    (cal,) = spec.calendars
    assert [(r.start, r.end) for r in cal.day_of_week] == [(1, 1)]  # Monday
    assert [r.start for r in cal.hour] == [9] and [r.start for r in cal.minute] == [0]
    assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert desc.schedule.policy.catchup_window == CATCHUP_WINDOW
    action = desc.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "HandoffWorkflow" and action.task_queue == "fw-queue-1"
    # The next run is a Monday 09:00 in New York.
    upcoming = desc.info.next_action_times[0]
    local = upcoming.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)

    # A restart (twice, one with another queue and a pause made by hand on the UI).
    await client.get_schedule_handle(f"{PREFIX}-primary").pause(note="paused by hand")
    await ensure_handoff_schedules(client, default_policy, "fw-queue-2", prefix=PREFIX)
    await ensure_handoff_schedules(client, default_policy, "fw-queue-2", prefix=PREFIX)
    desc = await client.get_schedule_handle(f"{PREFIX}-primary").describe()
    action = desc.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.task_queue == "fw-queue-2"
    assert desc.schedule.state.paused  # kept
    expected = [f"{PREFIX}-primary", f"{PREFIX}-secondary"]
    await wait_for(
        lambda: _equal(client, expected), timeout=20, what="exactly one schedule per rotation"
    )

    # Disabled in the policy: gone.
    off = default_policy.model_copy(update={"handoff": HandoffPolicy(enabled=False)})
    assert await ensure_handoff_schedules(client, off, "fw-queue-2", prefix=PREFIX) == []
    await wait_for(lambda: _equal(client, []), timeout=20, what="the schedules deleted")


async def _equal(client: Client, expected: list[str]) -> bool:
    return await _listed(client) == expected


async def test_worker_start_up_makes_the_schedules(
    dev_env: WorkflowEnvironment, default_policy: Policy
) -> None:
    client = dev_env.client
    queue = f"fw-{uuid.uuid4().hex[:6]}"
    try:
        for _ in range(2):  # two start-ups
            await _ensure_schedules(client, PolicyStore(policy=default_policy), queue)
        followup = await client.get_schedule_handle("weekly-followup").describe()
        assert followup.schedule.spec.time_zone_name == "America/New_York"
        monthly = (await client.get_schedule_handle("monthly-report").describe()).schedule
        assert monthly.spec.time_zone_name == "America/New_York"
        calendar = monthly.spec.calendars[0]
        assert (calendar.day_of_month[0].start, calendar.hour[0].start) == (1, 9)
        for role in ("primary", "secondary"):
            desc = await client.get_schedule_handle(f"handoff-{role}").describe()
            action = desc.schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            assert action.task_queue == queue
            assert desc.schedule.policy.catchup_window == timedelta(days=1)
    finally:
        off = default_policy.model_copy(update={"handoff": HandoffPolicy(enabled=False)})
        await ensure_handoff_schedules(client, off, queue)
        await client.get_schedule_handle("weekly-followup").delete()
        await client.get_schedule_handle("monthly-report").delete()
