"""Resolution, the Resolution message, and the post-mortem child that outlives the incident."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.ids import postmortem_workflow_id
from domain.incident import AcknowledgeRequest, ResolveRequest, Status
from domain.policy import Policy
from domain.postmortem import Stage
from storage.documents import Documents
from tests.workflows.helpers import first_paged, minutes, open_incident, state_of
from workflows.incident import IncidentWorkflow
from workflows.postmortem import MarkReviewHeld, PostMortemInput, PostMortemWorkflow


@pytest.mark.parametrize("severity", ["P0", "P1"])
async def test_p0_p1_resolution_starts_a_postmortem_that_outlives_the_incident(
    severity: str,
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    handle = await open_incident(ts_env.client, queue, severity)
    paged = await first_paged(handle)
    await handle.execute_update(IncidentWorkflow.acknowledge, AcknowledgeRequest(by=paged))
    await ts_env.sleep(minutes(42))
    resolve = ResolveRequest(
        by=paged, root_cause="Connection pool exhausted", fix="Raised pool size"
    )
    await handle.execute_update(IncidentWorkflow.resolve, resolve)
    final = await handle.result()
    assert final.status == Status.RESOLVED

    child = ts_env.client.get_workflow_handle_for(
        PostMortemWorkflow.run, postmortem_workflow_id(final.incident_id or "")
    )
    assert (await child.describe()).status == WorkflowExecutionStatus.RUNNING
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    pm = await child.query(PostMortemWorkflow.state)
    for _ in range(200):  # the draft is written by the child's first activity
        if pm.document_path is not None:
            break
        await asyncio.sleep(0.05)
        pm = await child.query(PostMortemWorkflow.state)
    assert final.resolved_at is not None
    assert final.resolved_at < pm.review_at <= final.resolved_at + timedelta(hours=48)
    stored = Documents(Store(tmp_path).database).get("postmortem", final.incident_id)
    assert stored is not None  # the database holds the draft
    draft = stored.markdown
    assert "INC-" in draft and "Connection pool exhausted" in draft
    assert "Connection pool exhausted" in Path(pm.document_path or "").read_text()  # mirror

    await ts_env.sleep(pm.review_at - final.resolved_at + minutes(1))
    held = await child.execute_update(
        PostMortemWorkflow.mark_held, MarkReviewHeld(by="erin", notes="3 actions")
    )
    assert held.held_by == "erin"
    done = await child.query(PostMortemWorkflow.state)  # open until its follow-through ends
    assert done.held_at is not None and done.reminders_sent >= 1
    assert done.stage == Stage.MEETING_HELD and done.completed_at is None
    await child.terminate("test over")

    outbox = Store(tmp_path).notifications(final.incident_id)
    resolution = [n for n in outbox if n.kind == "resolution"]
    assert {n.recipient for n in resolution} == {"#incidents", "#stakeholders"}
    assert "**Duration**: 00:42" in resolution[0].text
    assert "**Root Cause**: Connection pool exhausted" in resolution[0].text
    scheduled = {n.recipient for n in outbox if n.kind == "postmortem_scheduled"}
    assert scheduled == {
        paged,
        default_policy.roster.team_lead,
        default_policy.roster.engineering_manager,
    }
    ticket = Documents(Store(tmp_path).database).get("ticket", final.incident_id)
    assert ticket is not None and ticket.markdown.count("Resolved") >= 1
    assert (tmp_path / "tickets" / f"{final.incident_id}.md").read_text() == ticket.markdown


@pytest.mark.parametrize("severity", ["P2", "P3"])
async def test_p2_p3_resolution_starts_no_postmortem(
    severity: str,
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    handle = await open_incident(ts_env.client, queue, severity)
    resolve = ResolveRequest(
        by="bob", root_cause="Flaky check", fix="Tuned threshold", false_positive=True
    )
    await handle.execute_update(IncidentWorkflow.resolve, resolve)
    final = await handle.result()
    assert final.false_positive and final.postmortem_workflow_id is None
    with pytest.raises(RPCError):
        await ts_env.client.get_workflow_handle(
            postmortem_workflow_id(final.incident_id or "")
        ).describe()
    resolution = [
        n for n in Store(tmp_path).notifications(final.incident_id) if n.kind == "resolution"
    ]
    assert [n.recipient for n in resolution] == ["#incidents"]
    assert f"Not required for {severity}" in resolution[0].text


async def test_resolution_stands_when_the_postmortem_id_is_taken(
    ts_env: WorkflowEnvironment, default_policy: Policy, queue: str
) -> None:
    # INC ids repeat only if the worker lost its data dir; the incident must still close.
    handle = await open_incident(ts_env.client, queue, "P1")
    opened = await state_of(handle)
    taken = postmortem_workflow_id(opened.incident_id or "")
    squatter = await ts_env.client.start_workflow(
        PostMortemWorkflow.run,
        PostMortemInput(incident=opened, policy=default_policy, review_at=opened.opened_at),
        id=taken,
        task_queue=queue,
    )
    resolve = ResolveRequest(by="alice", root_cause="bad deploy", fix="rolled back")
    await handle.execute_update(IncidentWorkflow.resolve, resolve)
    final = await handle.result()
    assert final.status == Status.RESOLVED
    assert final.timeline[-1].text == f"Post-mortem not started: {taken} already exists"
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert (await squatter.describe()).run_id == squatter.result_run_id  # left alone
    await squatter.terminate("test over")
