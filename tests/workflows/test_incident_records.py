"""Incident records: written with every ticket version over a real lifecycle, never replaced
by an older write, and back-filled once from Temporal for incidents that have none."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.incident import AcknowledgeRequest, ResolveRequest, TicketEdit
from domain.policy import Policy, Severity
from domain.records import record_of
from starter.records_backfill import DONE, backfill_records
from storage.documents import Documents
from storage.ledger import Ledger
from storage.records import IncidentRecords
from tests.api.api_support import running_api
from tests.workflows.helpers import first_paged, make_alert, minutes
from workflows.incident import IncidentWorkflow


async def test_the_record_follows_the_incident(
    ts_env: WorkflowEnvironment, tmp_path: Path, queue: str
) -> None:
    from starter.incidents import open_or_join

    detected = datetime.now(UTC) - timedelta(minutes=3)
    alert = make_alert("P1", detected_at=detected)
    handle = await open_or_join(ts_env.client, alert, task_queue=queue)
    await handle.execute_update(IncidentWorkflow.opened)
    await ts_env.sleep(minutes(20))  # primary, then secondary paged
    paged = await first_paged(handle)
    await handle.execute_update(IncidentWorkflow.acknowledge, AcknowledgeRequest(by=paged))
    await handle.execute_update(
        IncidentWorkflow.edit_ticket, TicketEdit(by=paged, customer_impact_hours=0.5)
    )
    await handle.execute_update(
        IncidentWorkflow.resolve,
        ResolveRequest(by=paged, root_cause="pool", fix="bigger", false_positive=True),
    )
    final = await handle.result()
    assert final.incident_id is not None
    record = IncidentRecords(Store(tmp_path).database).get(final.incident_id)
    assert record is not None
    assert (record.severity_at_open, record.severity, record.status) == (
        Severity.P1,
        Severity.P1,
        "Resolved",
    )
    assert record.detected_from_alert and record.detected_at == detected
    assert record.acknowledged_by == paged and record.resolved_at == final.resolved_at
    assert (record.max_level_paged, record.pages, record.escalated_by_hand) == (2, 2, False)
    assert record.false_positive and record.customer_impact_hours == 0.5
    assert record.postmortem_required and record.version == final.ticket_version


async def test_every_page_reaches_the_record_and_the_ticket_at_once(
    ts_env: WorkflowEnvironment, tmp_path: Path, queue: str
) -> None:
    """Nobody acknowledges: the ladder's second page is in the record (the reports' figures)
    and on the ticket before anyone does anything else."""
    from starter.incidents import open_or_join

    handle = await open_or_join(ts_env.client, make_alert("P1"), task_queue=queue)
    opened = await handle.execute_update(IncidentWorkflow.opened)
    await ts_env.sleep(minutes(20))  # primary at once, secondary at 15 minutes
    assert opened.incident_id is not None
    record = IncidentRecords(Store(tmp_path).database).get(opened.incident_id)
    assert record is not None and (record.max_level_paged, record.pages) == (2, 2)
    ticket = Documents(Store(tmp_path).database).get("ticket", opened.incident_id)
    assert ticket is not None
    assert "(Secondary On-Call, level 2)" in ticket.markdown


def test_an_older_write_never_replaces_a_newer_record(tmp_path: Path) -> None:
    from tests.domain.support import incident

    records = IncidentRecords(Store(tmp_path).database)
    newer = record_of(incident(ticket_version=5, alert_count=9), True)
    older = record_of(incident(ticket_version=4, alert_count=2), True)
    assert records.save(newer) and not records.save(older)
    assert records.get(newer.incident_id) == newer
    assert records.overlapping(newer.opened_at, newer.opened_at + minutes(1)) == [newer]


async def test_incidents_without_records_are_back_filled_once(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path: Path
) -> None:
    from starter.incidents import trigger

    async with running_api(dev_env, default_policy, tmp_path, "rec") as env:
        states = [
            await trigger(env.client, make_alert(sev), task_queue=env.stack.settings.task_queue)
            for sev in ("P2", "P3")
        ]
        database = Store(tmp_path).database
        records = IncidentRecords(database)
        # As before the records existed: no rows.
        for st in states:
            assert st.incident_id is not None
        with database.write() as db:
            db.exec_driver_sql("DELETE FROM incident_records")
        ids = {st.incident_id for st in states}
        for _ in range(100):  # visibility lags a moment
            listed = [
                e async for e in env.client.list_workflows("WorkflowType = 'IncidentWorkflow'")
            ]
            if len(listed) >= 2:
                break
            await asyncio.sleep(0.1)
        written = await backfill_records(env.client, database, default_policy)
        assert written == 2
        assert {i for i in ids if records.get(str(i)) is not None} == ids
        assert Ledger(database).value(DONE) is True
        # Once: a second start-up does nothing.
        assert await backfill_records(env.client, database, default_policy) is None
