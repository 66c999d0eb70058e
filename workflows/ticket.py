"""ClosedTicketWorkflow: writes a closed incident's ticket again after an edit.

Started by the API for each ``firewatch ticket`` on an incident whose workflow has
finished (id ``ticket/<INC id>/<edit number>``); one activity, retried until it is written.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.models import DocumentWritten
    from activities.tickets import RewriteTicket, TicketActivities


@workflow.defn
class ClosedTicketWorkflow:
    @workflow.run
    async def run(self, request: RewriteTicket) -> DocumentWritten:
        return await workflow.execute_activity_method(
            TicketActivities.rewrite_closed_ticket,
            request,
            summary=f"Ticket of {request.incident_id}",
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
        )
