"""Record event histories of real runs for the replay tests.

    .venv/bin/python -m tests.histories.record [NAME ...]

NAME: incidents, heartbeat, handoff, followup, ticket, report or test-page (none: all).
Incidents, post-mortems, runbooks, closed tickets and monthly reports are recorded here;
the other workflow types by the ``record_history`` module beside their tests.

Re-record only for a deliberate, patched change: the saved files are what running
incidents in production look like, and `tests/test_replay.py` must keep replaying them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.config import default_policy as shipped_policy
from domain.ids import postmortem_workflow_id
from domain.incident import (
    AcknowledgeRequest,
    AddResponderRequest,
    AlertResolveRequest,
    DiagnosticsRequest,
    EscalateRequest,
    MitigationDecision,
    MitigationRequest,
    ResolveRequest,
    SeverityChangeRequest,
    Status,
    StatusUpdateRequest,
)
from domain.policy import Severity
from domain.postmortem import (
    ActionItemKind,
    AddActionItem,
    CloseActionItem,
    EditActionItem,
    RecordMeeting,
    RescheduleReview,
    VerifyActionItem,
)
from tests.conftest import running_worker
from tests.workflows.helpers import first_paged, make_alert, open_incident
from worker import ACTIVITY_THREADS
from workflows.incident import IncidentWorkflow
from workflows.postmortem import MarkReviewHeld, PostMortemWorkflow
from workflows.runbook import runbook_workflow_id

HERE = Path(__file__).parent


async def _save(handle: WorkflowHandle[Any, Any], name: str) -> None:
    history = await handle.fetch_history()
    (HERE / f"{name}.json").write_text(json.dumps(history.to_json_dict(), indent=1))
    print(f"saved {name}.json ({len(history.events)} events)")


async def record(env: WorkflowEnvironment) -> None:
    from starter.incidents import open_or_join

    policy = shipped_policy()  # with the seed's runbooks: P0-P2 run their diagnostics
    with tempfile.TemporaryDirectory() as data, ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
        async with running_worker(env.client, policy, Path(data), pool) as (_, queue):
            # P2 from Alertmanager, resolved at the source after its ladder ran out.
            alert = make_alert("P2", source="alertmanager", integration="alertmanager")
            p2 = await open_or_join(env.client, alert, task_queue=queue)
            await p2.execute_update(IncidentWorkflow.opened)
            await open_or_join(env.client, alert, task_queue=queue)
            await env.sleep(timedelta(hours=14))
            await p2.signal(
                IncidentWorkflow.resolve_from_source,
                AlertResolveRequest(
                    source="alertmanager", dedup_key=alert.dedup_key, integration="alertmanager"
                ),
            )
            await p2.result()
            await _save(p2, "incident_p2_auto_resolved")

            # P3: next-business-day review, ack and resolve.
            p3 = await open_incident(env.client, queue, "P3", summary="Typo in footer")
            await env.sleep(timedelta(days=4))
            await p3.execute_update(IncidentWorkflow.acknowledge, AcknowledgeRequest(by="alice"))
            await env.sleep(timedelta(days=1, hours=2))
            await p3.execute_update(
                IncidentWorkflow.resolve, ResolveRequest(by="alice", root_cause="typo", fix="fixed")
            )
            await p3.result()
            await _save(p3, "incident_p3_review")

            # P1: ladder, ack, updates, severity change, escalate, responder, resolve, post-mortem.
            p1 = await open_incident(env.client, queue, "P1", summary="API p99 > 5s")
            await env.sleep(timedelta(minutes=20))
            paged = await first_paged(p1)
            await p1.execute_update(IncidentWorkflow.acknowledge, AcknowledgeRequest(by=paged))
            await p1.execute_update(
                IncidentWorkflow.run_diagnostics, DiagnosticsRequest(by=paged, check="health")
            )
            await p1.execute_update(
                IncidentWorkflow.propose_mitigation, MitigationRequest(by=paged, action="restart")
            )
            await p1.execute_update(
                IncidentWorkflow.decide_mitigation,
                MitigationDecision(by="erin", proposal=1, approve=False, reason="not yet"),
            )
            await env.sleep(timedelta(minutes=20))
            await p1.execute_update(
                IncidentWorkflow.post_update,
                StatusUpdateRequest(by=paged, message="Rolled back", status=Status.MITIGATING),
            )
            await p1.execute_update(
                IncidentWorkflow.change_severity,
                SeverityChangeRequest(by="erin", severity=Severity.P0),
            )
            await p1.execute_update(
                IncidentWorkflow.escalate, EscalateRequest(by=paged, reason="DB")
            )
            await p1.execute_update(
                IncidentWorkflow.add_responder, AddResponderRequest(person="frank", by=paged)
            )
            await env.sleep(timedelta(minutes=40))
            await p1.execute_update(
                IncidentWorkflow.resolve,
                ResolveRequest(by=paged, root_cause="pool", fix="bigger pool"),
            )
            final = await p1.result()
            await _save(p1, "incident_p1_full")
            run = env.client.get_workflow_handle(runbook_workflow_id(final.incident_id or "", 1))
            await _save(run, "runbook_at_open")

            pm = env.client.get_workflow_handle_for(
                PostMortemWorkflow.run, postmortem_workflow_id(final.incident_id or "")
            )
            state = await pm.query(PostMortemWorkflow.state)
            await pm.execute_update(
                PostMortemWorkflow.reschedule_review,
                RescheduleReview(by="erin", review_at=state.review_at + timedelta(hours=1)),
            )
            await env.sleep(
                state.review_at - (final.resolved_at or state.review_at) + timedelta(hours=2)
            )
            await pm.execute_update(PostMortemWorkflow.mark_held, MarkReviewHeld(by="erin"))
            await pm.execute_update(
                PostMortemWorkflow.record_meeting,
                RecordMeeting(by="erin", what_went_well="Fast ack", areas_for_improvement="Alerts"),
            )
            held = await pm.query(PostMortemWorkflow.state)
            assert held.held_at is not None
            due = held.held_at.date() + timedelta(days=3)
            for owner, kind in (
                ("dave", ActionItemKind.MONITORING),
                ("carol", ActionItemKind.RUNBOOK),
            ):
                await pm.execute_update(
                    PostMortemWorkflow.add_action_item,
                    AddActionItem(by="erin", title=f"{kind} fix", owner=owner, due=due, kind=kind),
                )
            await pm.execute_update(
                PostMortemWorkflow.edit_action_item,
                EditActionItem(by="erin", number=2, due=due + timedelta(days=1)),
            )
            await env.sleep(timedelta(days=12))  # reminders, overdue notices, a weekly one
            for number, owner in ((1, "dave"), (2, "carol")):
                await pm.execute_update(
                    PostMortemWorkflow.close_action_item,
                    CloseActionItem(by=owner, number=number, evidence="https://x.example"),
                )
                await pm.execute_update(
                    PostMortemWorkflow.verify_action_item,
                    VerifyActionItem(by="frank", number=number),
                )
            await pm.result()
            await _save(pm, "postmortem_held")


async def record_closed_ticket() -> None:
    """A P3 resolved and closed, then its ticket edited (ClosedTicketWorkflow)."""
    from datetime import UTC, datetime

    from activities.tickets import RewriteTicket
    from domain.incident import TicketEdit
    from storage.store import Store
    from storage.ticket_edits import TicketEdits
    from tests.conftest import ts_environment
    from workflows.ticket import ClosedTicketWorkflow

    async with ts_environment() as env:
        with tempfile.TemporaryDirectory() as data, ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
            async with running_worker(env.client, shipped_policy(), Path(data), pool) as (_, q):
                handle = await open_incident(env.client, q, "P3")
                await handle.execute_update(
                    IncidentWorkflow.resolve,
                    ResolveRequest(by="bob", root_cause="Copy edit", fix="Fixed the text"),
                )
                final = await handle.result()
                assert final.incident_id is not None
                edit = TicketEdit(by="carol", what_went_well="Found in review")
                number = TicketEdits(Store(Path(data)).database).add(
                    final.incident_id, edit, datetime.now(UTC)
                )
                ticket = await env.client.start_workflow(
                    ClosedTicketWorkflow.run,
                    RewriteTicket(
                        incident_id=final.incident_id,
                        workflow_id=final.workflow_id,
                        run_id=handle.result_run_id,
                    ),
                    id=f"ticket/{final.incident_id}/edit-{number}",
                    task_queue=q,
                )
                await ticket.result()
                await _save(ticket, "closed_ticket_edit")


async def record_monthly_report() -> None:
    """One monthly report run on the first of December 2026 over the seeded November."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from storage.records import IncidentRecords
    from storage.store import Store
    from tests.conftest import ts_environment
    from tests.reports.seeded import ALL
    from workflows.monthly_report import MonthlyReportWorkflow

    async with ts_environment() as env:
        with tempfile.TemporaryDirectory() as data, ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
            records = IncidentRecords(Store(Path(data)).database)
            for record in ALL:
                records.save(record)
            async with running_worker(env.client, shipped_policy(), Path(data), pool) as (_, q):
                first = datetime(2026, 12, 1, 9, tzinfo=ZoneInfo("America/New_York"))
                await env.sleep(first - await env.get_current_time())
                with env.auto_time_skipping_disabled():
                    handle = await env.client.start_workflow(
                        MonthlyReportWorkflow.run, id="report/monthly-recorded", task_queue=q
                    )
                    await handle.result()
                await _save(handle, "monthly_report")


async def record_test_page() -> None:
    """A test page by hand for dave, asked by erin (outbox only: every method recorded)."""
    from tests.conftest import ts_environment
    from workflows import test_page

    policy = shipped_policy()
    dave, erin = policy.roster.person("dave"), policy.roster.person("erin")
    assert dave is not None and erin is not None
    async with ts_environment() as env:
        with tempfile.TemporaryDirectory() as data, ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
            async with running_worker(env.client, policy, Path(data), pool) as (_, q):
                handle = await env.client.start_workflow(
                    test_page.TestPageWorkflow.run,
                    test_page.TestPageInput(person=dave, by=erin.label),
                    id="test-page/dave/recorded",
                    task_queue=q,
                )
                await handle.result()
                await _save(handle, "test_page")


async def record_incidents() -> None:
    from tests.conftest import ts_environment

    async with ts_environment() as env:
        await record(env)


async def main(names: list[str]) -> None:
    from tests.followup import record_history as followup
    from tests.handoff import record_history as handoff
    from tests.heartbeats import record_history as heartbeat

    recorders = {
        "incidents": record_incidents,
        "heartbeat": heartbeat.main,
        "handoff": handoff.main,
        "followup": followup.main,
        "ticket": record_closed_ticket,
        "report": record_monthly_report,
        "test-page": record_test_page,
    }
    unknown = set(names) - set(recorders)
    if unknown:
        raise SystemExit(f"unknown: {', '.join(sorted(unknown))}; known: {', '.join(recorders)}")
    for name in names or list(recorders):
        await recorders[name]()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
