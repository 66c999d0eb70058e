"""Back-fill the incident records once from Temporal, so the first report is not empty.

Incidents that ran before the records table existed have no row. At start-up the worker
lists every incident through visibility, asks each for its state (a closed workflow answers
from its history) and writes the missing records; then it notes that the back-fill is done,
so later start-ups skip it. Records written since by the incidents themselves are newer
and are never replaced (``IncidentRecords.save`` keeps the newer version).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from temporalio.client import Client

from domain.incident import IncidentState
from domain.policy import Policy
from domain.records import record_of
from storage.database import Database
from storage.ledger import Ledger
from storage.records import IncidentRecords
from workflows.incident import IncidentWorkflow
from workflows.search_attributes import INCIDENT_ID

log = logging.getLogger(__name__)
DONE = "records:backfilled"
QUERY = "WorkflowType = 'IncidentWorkflow' AND IncidentId IS NOT NULL"


async def backfill_records(client: Client, database: Database, policy: Policy) -> int | None:
    """Write the records of incidents that have none; the number written (None: it ran
    before, nothing to do)."""
    ledger = Ledger(database)
    if await asyncio.to_thread(ledger.value, DONE):
        return None
    records = IncidentRecords(database)
    # INC id -> its latest run (an incident that continued as new has a row per run).
    latest: dict[str, tuple[datetime, str, str]] = {}
    async for execution in client.list_workflows(QUERY, page_size=1000):
        incident_id = execution.typed_search_attributes.get(INCIDENT_ID)
        run = (execution.start_time, execution.id, execution.run_id)
        if incident_id and (incident_id not in latest or run > latest[incident_id]):
            latest[incident_id] = run
    written = 0
    for incident_id, (_, workflow_id, run_id) in latest.items():
        if await asyncio.to_thread(records.get, incident_id) is not None:
            continue
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        state: IncidentState | None = await handle.query(IncidentWorkflow.state)
        if state is None or state.incident_id != incident_id:
            continue
        required = policy.for_severity(state.severity).postmortem_required
        written += await asyncio.to_thread(records.save, record_of(state, required))
    await asyncio.to_thread(ledger.set_value, DONE, True)
    log.info("incident records back-filled: %d of %d incidents", written, len(latest))
    return written
