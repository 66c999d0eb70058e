"""Human incident ids: INC-YYYY-MM-DD-###, sequential per UTC day."""

from __future__ import annotations

from temporalio import activity

from activities.models import AllocateIncidentId
from activities.store import Store
from domain.ids import format_incident_id


class IncidentIdActivities:
    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn
    def allocate_incident_id(self, request: AllocateIncidentId) -> str:
        # Keyed by run: a retried activity, or a replayed worker, gets the same number.
        key = f"{request.workflow_id}#{request.run_id}"
        return format_incident_id(
            request.day, self._store.allocate_incident_number(request.day, key)
        )
