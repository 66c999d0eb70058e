"""Human incident ids: INC-YYYY-MM-DD-###, sequential per UTC day."""

from __future__ import annotations

from datetime import date, datetime

from temporalio import activity

from activities.models import AllocateIncidentId, OpenIncident
from domain.ids import format_incident_id
from storage.store import Store


class IncidentIdActivities:
    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn
    def allocate_incident_id(self, request: AllocateIncidentId) -> str:
        """Histories from before the batched opening call this one: no listing fields."""
        return self._allocate(request.workflow_id, request.run_id, request.day)

    def allocate_for(self, request: OpenIncident) -> str:
        """The id, recorded with what ``firewatch incidents`` lists (one write)."""
        return self._allocate(
            request.workflow_id,
            request.run_id,
            request.day,
            opened_at=request.at,
            summary=request.summary,
            service=request.service,
            severity=request.severity,
        )

    def _allocate(
        self,
        workflow_id: str,
        run_id: str,
        day: date,
        *,
        opened_at: datetime | None = None,
        summary: str = "",
        service: str = "",
        severity: str = "",
    ) -> str:
        # Keyed by run: a retried activity, or a replayed worker, gets the same number. The
        # row is also the id -> workflow run mapping that lookups by INC id go through.
        number = self._store.allocate_incident_number(
            day,
            f"{workflow_id}#{run_id}",
            opened_at=opened_at,
            summary=summary,
            service=service,
            severity=severity,
        )
        return format_incident_id(day, number)
