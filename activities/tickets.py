"""A closed incident's ticket, written again after an edit (``workflows.ticket``).

The incident's workflow has finished, so its final state is its result; the edits made
since (``storage.ticket_edits``) are laid over it and the ticket is rendered and written as
the incident itself would have, under a version above any the incident wrote.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client

from activities.documents import DocumentActivities
from activities.models import DocumentWritten, WriteDocument
from activities.policy import PolicyActivities
from domain.incident import IncidentState
from domain.records import record_of
from domain.templates import render_incident_report
from domain.transitions import with_closed_edits
from storage.database import Database
from storage.ticket_edits import TicketEdits

# Above any version the incident's own run writes (one per step), so a late retry of one of
# those never replaces an edited ticket.
CLOSED_EDIT_VERSIONS = 1_000_000


class RewriteTicket(BaseModel):
    incident_id: str
    workflow_id: str
    run_id: str | None = None  # None: the latest run


class TicketActivities:
    def __init__(
        self,
        client: Client,
        database: Database,
        documents: DocumentActivities,
        policies: PolicyActivities,
    ) -> None:
        self._client = client
        self._edits = TicketEdits(database)
        self._documents = documents
        self._policies = policies

    @activity.defn(name="Write a closed incident's ticket")
    async def rewrite_closed_ticket(self, request: RewriteTicket) -> DocumentWritten:
        handle = self._client.get_workflow_handle(
            request.workflow_id, run_id=request.run_id, result_type=IncidentState
        )
        final: IncidentState = await handle.result()
        edits = await asyncio.to_thread(self._edits.for_incident, request.incident_id)
        policy = self._policies.load_policy_snapshot()
        state = with_closed_edits(final, policy, edits)
        markdown = render_incident_report(state, policy, datetime.now(UTC))
        version = CLOSED_EDIT_VERSIONS + len(edits)
        required = policy.for_severity(state.severity).postmortem_required
        record = record_of(state, required).model_copy(update={"version": version})
        document = WriteDocument(
            kind="ticket",
            incident_id=request.incident_id,
            version=version,
            markdown=markdown,
            record=record,  # customer impact hours set after closing count in the reports
        )
        return await asyncio.to_thread(self._documents.write_document, document)
