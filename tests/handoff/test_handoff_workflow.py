"""HandoffWorkflow on the time-skipping server with a real worker: the test-page verdict at
exactly the policy's window, and a Monday 09:00 local handoff across a DST change."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.handoff import HandoffResult
from domain.policy import Policy, Role
from storage.handoffs import Handoffs
from storage.store import Store
from tests.conftest import running_worker
from tests.heartbeats.support import NIGHTLY, with_heartbeats
from workflows.handoff import AckTest, ConfirmContact, HandoffInput, HandoffWorkflow

NY = ZoneInfo("America/New_York")


async def _progress(handle: WorkflowHandle[Any, Any], timeout: float = 15.0) -> HandoffResult:
    deadline = time.monotonic() + timeout
    while True:
        found = await handle.query(HandoffWorkflow.progress)
        if found is not None:
            assert isinstance(found, HandoffResult)
            return found
        if time.monotonic() > deadline:
            raise AssertionError("the handoff never sent its test pages")
        await asyncio.sleep(0.05)


async def test_unacknowledged_method_is_reported_at_exactly_the_window(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    executor: ThreadPoolExecutor,
) -> None:
    client = ts_env.client
    async with running_worker(client, default_policy, tmp_path, executor) as (_, queue):
        handle = await client.start_workflow(
            HandoffWorkflow.run,
            HandoffInput(role=Role.PRIMARY),
            id=f"handoff/test-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        progress = await _progress(handle)
        incoming = progress.report.incoming.name
        assert [p.method for p in progress.test_pages] == ["sms", "slack", "email"]
        for method, via in (("sms", "sms"), ("slack", "slack")):
            page = await handle.execute_update(
                HandoffWorkflow.ack_test, AckTest(by=incoming, method=method, via=via)
            )
            assert page.acked_at is not None
        await handle.execute_update(
            HandoffWorkflow.confirm_contact, ConfirmContact(by=incoming, via="sms")
        )
        # `firewatch handoff show` reads the stored row: it shows the acks at once, not
        # only when the window closes.
        handoffs = Handoffs(Store(tmp_path).database)
        deadline = time.monotonic() + 15
        while True:
            row = handoffs.get(progress.handoff_id)
            assert row is not None
            acked = {p.method for p in row.test_pages if p.acked_at is not None}
            if acked == {"sms", "slack"} and row.contact_confirmed_at is not None:
                break
            assert time.monotonic() < deadline, f"stored: {acked}, {row.contact_confirmed_at}"
            await asyncio.sleep(0.05)
        assert row.status == "testing"
        result = await handle.result()
    assert result is not None
    assert result.status == "finished"
    assert [(p.person, p.method) for p in result.unverified] == [(incoming, "email")]
    assert result.deadline == result.started_at + timedelta(minutes=30)
    assert result.finished_at is not None
    assert abs(result.finished_at - result.deadline) < timedelta(seconds=1)

    store = Store(tmp_path)
    rows = store.notifications(result.handoff_id)
    by_kind: dict[str, list[Any]] = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row)
    tests = sorted(r.idempotency_key for r in by_kind["handoff_test_page"])
    assert tests == sorted(
        f"handoff:{result.handoff_id}:test:{incoming}:{m}" for m in ("sms", "slack", "email")
    )
    reports = {r.recipient for r in by_kind["handoff_report"]}
    assert reports == {incoming, result.report.outgoing.name}
    unverified = by_kind["handoff_unverified"]
    assert {r.recipient for r in unverified} == {"erin", result.report.outgoing.name}
    for row in unverified:
        assert row.scheduled_at == result.started_at + timedelta(minutes=30)
        assert "Email to" in row.text and "SMS to" not in row.text
    (notice,) = by_kind["shift_change"]
    assert notice.recipient == "#incidents"
    assert notice.text.startswith(f"Primary is now {result.report.incoming.label} until ")

    kept = Handoffs(store.database).get(result.handoff_id)
    assert kept is not None and kept.status == "finished"
    assert [p.method for p in kept.unverified] == ["email"]


def _next_transition(after: datetime) -> date:
    """The local date of the next DST change in New York after ``after``."""
    day = after.astimezone(NY).date()
    offset = datetime.combine(day, datetime.min.time(), NY).utcoffset()
    while True:
        day += timedelta(days=1)
        if datetime.combine(day, datetime.min.time(), NY).utcoffset() != offset:
            # The change happened during the day before (at 02:00).
            return day - timedelta(days=1)


async def test_monday_0900_local_handoff_across_a_dst_change(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    executor: ThreadPoolExecutor,
) -> None:
    now = await ts_env.get_current_time()
    change = _next_transition(now)
    monday = change + timedelta(days=(7 - change.weekday()) % 7 or 7)  # the Monday after
    # One shift from before now to that Monday: the shift ending then spans the change.
    days = (monday - now.astimezone(NY).date()).days + 2
    primary = default_policy.roster.primary.model_copy(
        update={
            "start": datetime.combine(monday, datetime.min.time()).replace(hour=9),
            "shift_length": timedelta(days=days),
        }
    )
    policy = default_policy.model_copy(
        update={"roster": default_policy.roster.model_copy(update={"primary": primary})}
    )
    policy = with_heartbeats(policy, NIGHTLY)  # never pinged: "waiting"
    expected = datetime(monday.year, monday.month, monday.day, 9, tzinfo=NY).astimezone(UTC)
    before = datetime(monday.year, monday.month, monday.day, 9, tzinfo=NY) - timedelta(days=days)
    # The shift that ends at the handoff is an hour longer or shorter than whole days.
    assert abs((expected - before.astimezone(UTC)) - timedelta(days=days)) == timedelta(hours=1)
    client = ts_env.client
    async with running_worker(client, policy, tmp_path, executor) as (_, queue):
        handle = await client.start_workflow(
            HandoffWorkflow.run,
            HandoffInput(role=Role.PRIMARY, wait_for_handoff=True),
            id=f"handoff/test-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        result = await handle.result()
    assert result is not None
    report = result.report
    assert report.shift_start == expected
    assert report.shift_start.astimezone(NY).hour == 9
    assert report.shift_start.astimezone(NY).weekday() == 0
    assert abs(result.started_at - expected) < timedelta(seconds=1)
    assert report.handoff_id == f"handoff/primary/{expected:%Y-%m-%dT%H:%MZ}"
    assert report.incoming.name == "alice"  # shift 0 of the rotation
    assert report.outgoing.name == "dave"
    assert [(h.name, h.status) for h in report.heartbeats] == [(NIGHTLY.name, "waiting")]
    assert report.heartbeats_note is None
    # Nobody acknowledged: every method is reported, at the deadline.
    assert [p.method for p in result.unverified] == ["sms", "slack", "email"]
    assert result.deadline == expected + timedelta(minutes=30)
