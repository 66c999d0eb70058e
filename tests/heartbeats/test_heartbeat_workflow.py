"""HeartbeatWorkflow on the time-skipping server, with a real worker: a miss opens one
incident through the normal alert path, the next ping resolves it, and pings within the
period open nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from domain.heartbeats import HeartbeatState, heartbeat_incident_workflow_id, heartbeat_workflow_id
from domain.incident import Status
from domain.policy import Policy
from starter.api.heartbeats import ping_heartbeat
from tests.conftest import running_worker
from tests.heartbeats.support import (
    NIGHTLY,
    QUEUE_DRAIN,
    beat_handle,
    beat_state,
    beat_when,
    eventually,
    exists,
    incident_when,
    with_heartbeats,
)
from tests.maintenance.test_held_paging import start_window
from workflows.heartbeat import HeartbeatInput, HeartbeatPing, HeartbeatWorkflow

INCIDENT = heartbeat_incident_workflow_id(NIGHTLY.name)
SIGNALED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED


@pytest.fixture
async def queue(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    executor: ThreadPoolExecutor,
) -> AsyncIterator[str]:
    policy = with_heartbeats(default_policy, NIGHTLY, QUEUE_DRAIN)
    async with running_worker(ts_env.client, policy, tmp_path, executor) as (_, name):
        yield name


async def ping(env: WorkflowEnvironment, queue: str, pings: int) -> HeartbeatState:
    """Ping NIGHTLY, and wait until its workflow has taken the ping in (``pings`` in all)."""
    await ping_heartbeat(env.client, NIGHTLY, task_queue=queue)
    return await beat_when(env.client, NIGHTLY.name, lambda s: s.pings == pings)


async def test_a_miss_opens_one_incident_and_the_next_ping_resolves_it(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    client = ts_env.client
    first = await ping(ts_env, queue, 1)
    assert first.last_ping_at is not None

    await ts_env.sleep(timedelta(hours=25))  # past the period, within the grace
    late = await beat_state(client, NIGHTLY.name)
    assert late.missed_at is None and late.misses == 0
    assert not await exists(client, INCIDENT)

    await ts_env.sleep(timedelta(hours=1, minutes=1))  # period + grace have passed
    opened = await incident_when(client, INCIDENT, lambda s: s.incident_id is not None)
    assert opened.summary == (
        "Heartbeat `nightly-backup` missed: no ping for 26h (period 24h, grace 2h)"
    )
    assert (opened.source, opened.service, opened.severity) == ("heartbeat", "api", "P3")
    assert opened.dedup_key == "heartbeat:nightly-backup"
    missed = await beat_when(client, NIGHTLY.name, lambda s: s.missed_at is not None)
    assert missed.misses == 1
    run = (await client.get_workflow_handle(INCIDENT).describe()).run_id

    # Days more of silence: still the one incident with its one alert (no timer re-arms).
    await ts_env.sleep(timedelta(days=3))
    still = await incident_when(client, INCIDENT, lambda s: True)
    assert still.status != Status.RESOLVED and still.alert_count == 1
    assert still.incident_id == opened.incident_id
    assert (await client.get_workflow_handle(INCIDENT).describe()).run_id == run
    assert (await beat_state(client, NIGHTLY.name)).misses == 1

    # The next ping resolves it, as a monitoring tool's "resolved" event does.
    await ping_heartbeat(client, NIGHTLY, task_queue=queue)
    resolved = await incident_when(client, INCIDENT, lambda s: s.status == Status.RESOLVED)
    assert resolved.resolved_by == "heartbeat"
    assert resolved.incident_id == opened.incident_id
    back = await beat_when(client, NIGHTLY.name, lambda s: s.missed_at is None)
    assert back.pings == 2 and back.misses == 1

    # And the timer runs again from that ping: the next miss opens a new incident.
    await ts_env.sleep(timedelta(hours=26, minutes=1))
    again = await incident_when(
        client, INCIDENT, lambda s: s.incident_id not in (None, opened.incident_id), timeout=30
    )
    assert again.status != Status.RESOLVED
    assert (await beat_state(client, NIGHTLY.name)).misses == 2


async def test_pings_within_the_period_open_nothing(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    client = ts_env.client
    for n in range(1, 6):
        await ping(ts_env, queue, n)
        await ts_env.sleep(timedelta(hours=23))  # every ping a little early
    await ping(ts_env, queue, 6)
    await ts_env.sleep(timedelta(hours=25, minutes=59))  # late, but within the grace
    state = await beat_state(client, NIGHTLY.name)
    assert (state.pings, state.misses, state.missed_at) == (6, 0, None)
    assert not await exists(client, INCIDENT)


async def test_state_carries_over_continue_as_new(ts_env: WorkflowEnvironment, queue: str) -> None:
    client = ts_env.client
    handle = await client.start_workflow(
        HeartbeatWorkflow.run,
        HeartbeatInput(monitor=NIGHTLY, continue_after_pings=3),
        id=heartbeat_workflow_id(NIGHTLY.name),
        task_queue=queue,
    )
    first_run = handle.result_run_id
    for _ in range(7):
        await handle.signal(HeartbeatWorkflow.ping, HeartbeatPing(monitor=NIGHTLY))

    async def settled_in_a_later_run() -> bool:
        # Read from the history, not by query: the time-skipping server leaves a query that
        # meets a continue-as-new unanswered, and that holds its clock still. A run that
        # sleeps on its timer has taken in every ping sent (signals that arrive while a run
        # continues as new make it take them in first).
        handle = beat_handle(client, NIGHTLY.name)
        history = await handle.fetch_history()
        run = (await handle.describe()).run_id
        return (
            run != first_run and history.events[-1].event_type == EventType.EVENT_TYPE_TIMER_STARTED
        )

    await eventually(settled_in_a_later_run, what="a later run to take every ping")
    history = await beat_handle(client, NIGHTLY.name).fetch_history()
    signals = [e for e in history.events if e.event_type == SIGNALED]
    assert len(signals) < 3  # this run's pings only: the earlier ones were carried over
    state = await beat_state(client, NIGHTLY.name)
    assert state.pings == 7
    # The carried state still times the next miss from the last ping.
    await ts_env.sleep(timedelta(hours=26, minutes=1))
    await incident_when(client, INCIDENT, lambda s: s.incident_id is not None)
    assert (await beat_state(client, NIGHTLY.name)).pings == 7


async def test_a_monitor_removed_from_the_policy_stops_without_alerting(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    executor: ThreadPoolExecutor,
) -> None:
    client = ts_env.client
    # The worker's policy no longer has the monitor the (older) ping still carried.
    async with running_worker(client, default_policy, tmp_path, executor) as (_, queue):
        await ping_heartbeat(client, NIGHTLY, task_queue=queue)
        await beat_when(client, NIGHTLY.name, lambda s: s.pings == 1)
        await ts_env.sleep(timedelta(hours=27))
        handle = client.get_workflow_handle_for(
            HeartbeatWorkflow.run, heartbeat_workflow_id(NIGHTLY.name)
        )
        final = await handle.result()
    assert final.removed and final.missed_at is None
    assert not await exists(client, INCIDENT)


async def test_a_miss_during_its_services_maintenance_pages_nobody(
    ts_env: WorkflowEnvironment, queue: str, tmp_path: Path
) -> None:
    client = ts_env.client
    await ping(ts_env, queue, 1)
    # Stored and started as `firewatch maintenance start --for 2d` does.
    window, _ = await start_window(
        client, queue, tmp_path, await ts_env.get_current_time(), timedelta(days=2)
    )
    await ts_env.sleep(timedelta(hours=26, minutes=1))
    held = await incident_when(client, INCIDENT, lambda s: s.incident_id is not None)
    assert held.paging_hold is not None and held.paging_hold.window == window.id
    assert held.pages == []
    assert any("in maintenance" in e.text for e in held.timeline)
