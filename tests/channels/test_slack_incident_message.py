"""sync_incident_message: one message per incident, edited in place; the war room, once."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from activities.channels.slack_incident_message import SlackActivities, SlackSyncResult
from activities.channels.snapshot import incident_snapshot
from activities.models import IncidentSnapshot
from activities.store import Store
from domain.incident import IncidentState, LadderRun, Page, Severity, Status
from domain.policy import Policy, Role
from tests.channels.conftest import channel_settings
from tests.channels.fake_slack import FakeSlack
from tests.storage.locks import hold_the_write_lock

OPENED = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def state(**kw: object) -> IncidentState:
    base = IncidentState(
        workflow_id="incident/direct/x",
        incident_id="INC-2026-11-26-007",
        dedup_key="x",
        service="api",
        summary="API p99 > 5s",
        severity=Severity.P1,
        opened_at=OPENED,
        ladder=LadderRun(anchor=OPENED),
        replanned_at=OPENED,
        pages=[Page(at=OPENED, person="alice", role=Role.PRIMARY, level=0, step="page:e0:l0:0")],
        assignee="alice",
    )
    return base.model_copy(update=kw)


async def sync(acts: SlackActivities, snap: IncidentSnapshot) -> SlackSyncResult | None:
    result: SlackSyncResult | None = await ActivityEnvironment().run(
        acts.sync_incident_message, snap
    )
    return result


def test_snapshot_shows_what_the_message_needs(default_policy: Policy) -> None:
    snap = incident_snapshot(state(), default_policy, OPENED + timedelta(minutes=1))
    assert snap.status == "Investigating" and snap.triggered and snap.assignee == "Alice Andersen"
    assert snap.next_escalation == "page Secondary On-Call at 10:15 UTC"
    assert snap.war_room and snap.war_room_name == "inc-2026-11-26-007"
    assert [i.slack_user_id for i in snap.invitees] == ["U0ALICE"]
    assert snap.updates == "Will provide updates every 15–30 minutes"


async def test_posted_once_then_edited_in_place(
    fake_slack: FakeSlack, tmp_path: Path, default_policy: Policy
) -> None:
    acts = SlackActivities(Store(tmp_path), channel_settings(slack=fake_slack))
    first = await sync(acts, incident_snapshot(state(), default_policy, OPENED))
    assert first is not None and first.ts and first.war_room
    acked = state(
        status=Status.INVESTIGATING,
        acknowledged_by="bob",
        acknowledged_at=OPENED + timedelta(minutes=3),
        assignee="bob",
        pages=[
            *state().pages,
            Page(at=OPENED, person="bob", role=Role.SECONDARY, level=1, step="p1"),
        ],
    )
    second = await sync(acts, incident_snapshot(acked, default_policy, OPENED))
    assert second is not None and (second.channel, second.ts) == (first.channel, first.ts)
    [message] = fake_slack.messages("incidents")
    assert message.edits == 1 and "Acknowledged by Bob Berg" in message.text
    blocks = json.dumps(message.blocks)
    assert "Incident Alert - P1" in blocks and "firewatch_escalate" in blocks
    assert "firewatch_ack" not in blocks and f"<#{first.war_room}>" in blocks
    assert "localhost:8233/namespaces/" in blocks  # the Temporal UI link
    room = fake_slack.channel("inc-2026-11-26-007")
    assert room is not None and {"U0ALICE", "U0BOB"} <= room.members
    assert len(fake_slack.calls_to("conversations.create")) == 1
    assert len(fake_slack.calls_to("conversations.invite")) == 2  # alice, then bob: once each

    resolved = acked.model_copy(
        update={
            "status": Status.RESOLVED,
            "resolved_at": OPENED + timedelta(minutes=42),
            "resolved_by": "bob",
            "root_cause": "Pool exhausted",
            "fix": "Bigger pool",
        }
    )
    await sync(acts, incident_snapshot(resolved, default_policy, OPENED))
    [message] = fake_slack.messages("incidents")
    blocks = json.dumps(message.blocks)
    assert "Incident Resolved - 10:42 UTC" in blocks and "00:42" in blocks
    assert "Pool exhausted" in blocks and "firewatch_actions" not in blocks


async def test_war_room_created_by_a_dead_attempt_is_found(
    fake_slack: FakeSlack, tmp_path: Path, default_policy: Policy
) -> None:
    earlier = fake_slack.add_channel("inc-2026-11-26-007")  # created, never recorded
    acts = SlackActivities(Store(tmp_path), channel_settings(slack=fake_slack))
    result = await sync(acts, incident_snapshot(state(), default_policy, OPENED))
    assert result is not None and result.war_room == earlier.id
    assert fake_slack.calls_to("conversations.create")[0].response["error"] == "name_taken"


async def test_without_slack_it_does_nothing(tmp_path: Path, default_policy: Policy) -> None:
    acts = SlackActivities(Store(tmp_path), channel_settings())
    assert await sync(acts, incident_snapshot(state(), default_policy, OPENED)) is None


async def test_a_sync_waiting_for_the_database_does_not_stall_the_worker(
    fake_slack: FakeSlack, tmp_path: Path, default_policy: Policy
) -> None:
    """The worker's event loop also polls and completes workflow tasks and heartbeats: a
    sync whose ledger write waits for SQLite's write lock must wait in a thread, not on it."""
    acts = SlackActivities(Store(tmp_path), channel_settings(slack=fake_slack))
    assert await sync(acts, incident_snapshot(state(), default_policy, OPENED)) is not None
    # Bob joins: the war room's member list is written again.
    joined = state(
        pages=[
            *state().pages,
            Page(at=OPENED, person="bob", role=Role.SECONDARY, level=1, step="p1"),
        ]
    )
    hold_s = 1.0
    holder = await hold_the_write_lock(tmp_path, hold_s)
    gaps: list[float] = []
    started = time.monotonic()
    syncing = asyncio.ensure_future(sync(acts, incident_snapshot(joined, default_policy, OPENED)))
    last = time.monotonic()
    while not syncing.done():
        await asyncio.sleep(0.01)
        gaps.append(time.monotonic() - last)
        last = time.monotonic()
    took = time.monotonic() - started
    await syncing
    holder.join()
    assert took >= hold_s * 0.8  # it did wait for the lock
    assert max(gaps) < 0.25, f"the event loop stalled for {max(gaps):.2f} s"
    room = fake_slack.channel("inc-2026-11-26-007")
    assert room is not None and {"U0ALICE", "U0BOB"} <= room.members
