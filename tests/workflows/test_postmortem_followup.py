"""The post-mortem's follow-through on the time-skipping server (issue 13).

A P1 resolves; the review is rescheduled and held within 48 h; two action items are
added; one is closed and verified; the other goes overdue (its owner reminded the day
before, then told, and the team lead too, then again a week later); once it is verified
the post-mortem completes. Times and recipients are exact.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.followup import stored_facts
from activities.store import Store
from domain.followup import render_digest
from domain.ids import postmortem_workflow_id
from domain.incident import AcknowledgeRequest, ResolveRequest, TicketFields
from domain.policy import Policy
from domain.postmortem import (
    ActionItemKind,
    AddActionItem,
    CloseActionItem,
    CompletePostmortem,
    EditActionItem,
    RecordMeeting,
    RescheduleReview,
    Stage,
    VerifyActionItem,
)
from storage.documents import Documents
from storage.postmortems import Postmortems
from tests.workflows.helpers import first_paged, minutes, open_incident, state_of
from workflows.incident import IncidentWorkflow
from workflows.postmortem import PostMortemInput, PostMortemState, PostMortemWorkflow

NY = ZoneInfo("America/New_York")


async def _resolved_p1(
    env: WorkflowEnvironment, queue: str
) -> tuple[str, datetime, WorkflowHandle[Any, Any], str]:
    """A P1 acknowledged and resolved 42 minutes in; its post-mortem with the draft written."""
    handle = await open_incident(env.client, queue, "P1")
    paged = await first_paged(handle)
    await handle.execute_update(IncidentWorkflow.acknowledge, AcknowledgeRequest(by=paged))
    await env.sleep(minutes(42))
    await handle.execute_update(
        IncidentWorkflow.resolve,
        ResolveRequest(by=paged, root_cause="Connection pool exhausted", fix="Raised pool size"),
    )
    final = await handle.result()
    assert final.incident_id is not None and final.resolved_at is not None
    child = env.client.get_workflow_handle_for(
        PostMortemWorkflow.run, postmortem_workflow_id(final.incident_id)
    )
    for _ in range(200):
        if (await child.query(PostMortemWorkflow.state)).stage == Stage.REVIEW_SCHEDULED:
            break
        await asyncio.sleep(0.05)
    return final.incident_id, final.resolved_at, child, paged


async def _state(child: WorkflowHandle[Any, Any]) -> PostMortemState:
    state: PostMortemState = await child.query(PostMortemWorkflow.state)
    return state


async def _sleep_until(env: WorkflowEnvironment, at: datetime) -> None:
    now = await env.get_current_time()
    assert at > now, f"{at} is not after {now}"
    await env.sleep(at - now)


def _local(day: date, hhmm: time) -> datetime:
    return datetime.combine(day, hhmm, tzinfo=NY)


async def test_a_p1_postmortem_from_review_to_verified_action_items(
    ts_env: WorkflowEnvironment, default_policy: Policy, tmp_path: Path, queue: str
) -> None:
    incident, resolved_at, child, paged = await _resolved_p1(ts_env, queue)
    pm = await _state(child)
    attendees = {paged, "erin", "frank"}
    assert set(pm.attendees) == attendees
    assert resolved_at < pm.review_at <= resolved_at + timedelta(hours=48)

    # Rescheduled, earlier (still after now, still within 48 h): the attendees are told.
    moved_to = resolved_at + (pm.review_at - resolved_at) / 2
    moved_to -= timedelta(seconds=moved_to.second, microseconds=moved_to.microsecond)
    pm = await child.execute_update(
        PostMortemWorkflow.reschedule_review,
        RescheduleReview(by="erin", review_at=moved_to, reason="Frank is out Thursday"),
    )
    assert pm.review_at == moved_to and pm.reschedules == 1

    # Nobody marks it held at the new time: the attendees are reminded then. A minute later
    # the meeting is recorded, with the agenda's notes and the lessons learned.
    await _sleep_until(ts_env, moved_to + minutes(1))
    pm = await child.execute_update(
        PostMortemWorkflow.record_meeting,
        RecordMeeting(
            by="erin",
            timeline_review="Alert at 09:00, ack in 2 minutes",
            root_cause_analysis="Pool sized for last year's traffic",
            action_item_assignment="Dave: alerting; Carol: runbook",
            process_improvements="Capacity review each quarter",
            what_went_well="Fast acknowledgement",
            areas_for_improvement="No alert on pool saturation",
        ),
    )
    held_at = pm.held_at
    assert held_at is not None and held_at - resolved_at <= timedelta(hours=48)
    assert pm.stage == Stage.MEETING_HELD

    # Two action items, due a week and ten days after the meeting (the team's dates).
    held_day = held_at.astimezone(NY).date()
    due1, due2 = held_day + timedelta(days=7), held_day + timedelta(days=10)
    one = await child.execute_update(
        PostMortemWorkflow.add_action_item,
        AddActionItem(
            by="erin",
            title="Alert on pool saturation",
            owner="dave",
            due=due1,
            kind=ActionItemKind.MONITORING,
        ),
    )
    two = await child.execute_update(
        PostMortemWorkflow.add_action_item,
        AddActionItem(
            by="erin", title="Pool runbook", owner="bob", due=due2, kind=ActionItemKind.RUNBOOK
        ),
    )
    assert (one.number, two.number) == (1, 2)
    # Carol owns it now (an edit): she is told; Bob was told at the add.
    await child.execute_update(
        PostMortemWorkflow.edit_action_item, EditActionItem(by="erin", number=2, owner="carol")
    )
    pm = await _state(child)
    assert pm.stage == Stage.ACTION_ITEMS and pm.open_items == 2

    # Item 1 is closed two days later and verified by the team lead.
    await ts_env.sleep(timedelta(days=2))
    closed = await child.execute_update(
        PostMortemWorkflow.close_action_item,
        CloseActionItem(by="dave", number=1, evidence="https://grafana.example/d/pool"),
    )
    assert closed.closed_at is not None
    await child.execute_update(
        PostMortemWorkflow.verify_action_item, VerifyActionItem(by="erin", number=1)
    )

    # Item 2: reminded the day before (09:00 local), overdue at the end of its due date,
    # again a week later; then closed and verified, and the post-mortem completes.
    overdue_at = _local(due2 + timedelta(days=1), time(0))
    await _sleep_until(ts_env, overdue_at + timedelta(days=7, hours=1))
    pm = await _state(child)
    assert pm.completed_at is None and pm.open_items == 1
    # The weekly digest lists it, overdue, from the rows the workflow wrote.
    facts = stored_facts(Store(tmp_path).database, await ts_env.get_current_time())
    assert [(i.incident_id, i.number, i.owner, i.overdue) for i in facts.items] == [
        (incident, 2, "carol", True)
    ]
    digest = render_digest(facts, default_policy).text
    assert (
        f"- Carol Christensen:\n  - OVERDUE {due2:%a %d %b}: Pool runbook ({incident} #2)" in digest
    )
    await child.execute_update(
        PostMortemWorkflow.close_action_item,
        CloseActionItem(by="carol", number=2, evidence="Runbook updated: runbooks/api.md#pool"),
    )
    final_item = await child.execute_update(
        PostMortemWorkflow.verify_action_item, VerifyActionItem(by="frank", number=2)
    )
    done: PostMortemState = await child.result()
    assert done.stage == Stage.COMPLETE and done.completed_by == "frank"
    assert done.completed_at == final_item.verified_at

    outbox = Store(tmp_path).notifications(incident, limit=1000)
    sent = [
        (n.kind, n.recipient, n.scheduled_at)
        for n in outbox
        if n.kind not in {"postmortem_scheduled", "resolution"}
        and n.kind.startswith(("postmortem", "action_item"))
    ]
    reminder_at = _local(due2 - timedelta(days=1), time(9))
    pm_items = done.items
    expected: list[tuple[str, str, datetime | None]] = [
        *[("postmortem_rescheduled", name, None) for name in pm.attendees],
        *[("postmortem_reminder", name, moved_to) for name in pm.attendees],
        ("action_item_assigned", "dave", pm_items[0].created_at),
        ("action_item_assigned", "bob", pm_items[1].created_at),
        ("action_item_assigned", "carol", None),
        ("action_item_closed", "erin", closed.closed_at),
        ("action_item_reminder", "carol", reminder_at),
        ("action_item_overdue", "carol", overdue_at),
        ("action_item_overdue_report", "erin", overdue_at),
        ("action_item_overdue", "carol", overdue_at + timedelta(days=7)),
        ("action_item_overdue_report", "erin", overdue_at + timedelta(days=7)),
        ("action_item_closed", "erin", None),
        *[("postmortem_completed", name, done.completed_at) for name in pm.attendees],
    ]
    # In order by time; notices sent together (to several people) in any order.
    assert sorted((k, r) for k, r, _ in sent) == sorted((k, r) for k, r, _ in expected)
    # Timers fire on the second (the server's clock adds milliseconds).
    to_the_second = {(k, r, at.replace(microsecond=0)) for k, r, at in sent}
    for kind, to, want in expected:
        if want is not None:
            assert (kind, to, want.replace(microsecond=0)) in to_the_second, (kind, to, want)
    assert [at for _, _, at in sent] == sorted(at for _, _, at in sent)
    assert resolved_at < sent[0][2] < moved_to
    overdue = next(n for n in outbox if n.kind == "action_item_overdue_report")
    assert "Action item #2: Pool runbook" in overdue.text
    assert "Owner: Carol Christensen" in overdue.text

    # The rows a report reads, and the document's last version.
    rows = Postmortems(Store(tmp_path).database)
    [row] = [r for r in rows.postmortems() if r.incident_id == incident]
    assert (row.stage, row.items_total, row.items_open, row.lessons_filled) == (
        "complete",
        2,
        0,
        True,
    )
    items = rows.action_items(incident_id=incident)
    assert [(i.number, i.owner, i.status, i.closed_on_time) for i in items] == [
        (1, "dave", "verified", True),
        (2, "carol", "verified", False),
    ]
    document = Path(done.document_path or "").read_text()
    assert "| 2 | Carol Christensen | Pool runbook | Runbook update |" in document
    assert "- **What Went Well**: Fast acknowledgement" in document
    assert f"<!-- firewatch-version: {done.document_version} -->" in document


async def test_bad_requests_are_rejected_and_change_nothing(
    ts_env: WorkflowEnvironment, default_policy: Policy, tmp_path: Path, queue: str
) -> None:
    _, _, child, _ = await _resolved_p1(ts_env, queue)
    now = await ts_env.get_current_time()
    today = now.astimezone(NY).date()
    item = await child.execute_update(
        PostMortemWorkflow.add_action_item,
        AddActionItem(
            by="erin", title="Alert", owner="dave", due=today, kind=ActionItemKind.MONITORING
        ),
    )
    await child.execute_update(
        PostMortemWorkflow.close_action_item,
        CloseActionItem(by="dave", number=item.number, evidence="https://x.example"),
    )
    before = await _state(child)
    bad: list[tuple[Any, Any, str]] = [
        (
            PostMortemWorkflow.add_action_item,
            AddActionItem(
                by="erin", title="x", owner="mallory", due=today, kind=ActionItemKind.TRAINING
            ),
            "owner 'mallory' is not on the roster",
        ),
        (
            PostMortemWorkflow.add_action_item,
            AddActionItem(
                by="erin",
                title="x",
                owner="dave",
                due=today - timedelta(days=1),
                kind=ActionItemKind.TRAINING,
            ),
            "is in the past",
        ),
        (
            PostMortemWorkflow.verify_action_item,
            VerifyActionItem(by="dave", number=1),
            "must be verified by someone other than its owner (dave)",
        ),
        (
            PostMortemWorkflow.complete,
            CompletePostmortem(by="erin"),
            "the post-mortem cannot complete: the review meeting is not marked held",
        ),
        (
            PostMortemWorkflow.reschedule_review,
            RescheduleReview(by="erin", review_at=now - timedelta(hours=1)),
            "is not in the future",
        ),
    ]
    for update, request, reason in bad:
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await child.execute_update(update, request)
        assert reason in str(failed.value.cause)
    after = await _state(child)
    assert after == before
    await child.terminate("test over")


async def test_a_long_postmortem_continues_as_new_with_its_items(
    ts_env: WorkflowEnvironment, default_policy: Policy, tmp_path: Path, queue: str
) -> None:
    opened = await state_of(await open_incident(ts_env.client, queue, "P1"))
    now = await ts_env.get_current_time()
    child = await ts_env.client.start_workflow(
        PostMortemWorkflow.run,
        PostMortemInput(
            incident=opened,
            policy=default_policy,
            review_at=now + timedelta(hours=20),
            continue_after_events=60,
        ),
        id=f"postmortem/can-{opened.incident_id}",
        task_queue=queue,
    )
    first_run = (await child.describe()).run_id
    today = now.astimezone(NY).date()
    await child.execute_update(
        PostMortemWorkflow.record_meeting,
        RecordMeeting(by="erin", what_went_well="Calm", areas_for_improvement="Alerting"),
    )
    # A ticket edit after resolution (starter.incidents.edit_ticket tells the post-mortem).
    edit = TicketFields(process_changes="Quarterly pool review")
    await child.signal(PostMortemWorkflow.ticket_edited, edit)
    for n in range(1, 7):
        await child.execute_update(
            PostMortemWorkflow.add_action_item,
            AddActionItem(
                by="erin",
                title=f"Item {n}",
                owner="dave",
                due=today + timedelta(days=n),
                kind=ActionItemKind.PREVENTION,
            ),
        )
    await ts_env.sleep(timedelta(days=3))  # reminders and overdue notices on the way
    runs = set()
    for n in range(1, 7):
        await child.execute_update(
            PostMortemWorkflow.close_action_item,
            CloseActionItem(by="dave", number=n, evidence=f"https://x.example/{n}"),
        )
        await child.execute_update(
            PostMortemWorkflow.verify_action_item, VerifyActionItem(by="erin", number=n)
        )
        runs.add((await child.describe()).run_id)
    done: PostMortemState = await child.result()
    assert runs - {first_run}, "never continued as new"
    assert done.stage == Stage.COMPLETE and [i.number for i in done.items] == [1, 2, 3, 4, 5, 6]
    assert (done.held_by, done.meeting.what_went_well) == ("erin", "Calm")
    # The last document, written by a later run, still has the ticket edit.
    last = Documents(Store(tmp_path).database).get("postmortem", opened.incident_id)
    assert last is not None and last.version == done.document_version
    assert "- **Process Changes**: Quarterly pool review\n" in last.markdown
    # Each notice went out once across the runs (idempotency keys carry over).
    outbox = Store(tmp_path).notifications(opened.incident_id, limit=1000)
    keys = [n.idempotency_key for n in outbox]
    assert len(keys) == len(set(keys))
    assert sum(1 for n in outbox if n.kind == "action_item_assigned") == 6
