"""What the Temporal UI shows of an incident: search attributes and current details.

Search attributes are upserted only when they change, and only those that changed, so the
history stays small; current details cost no command and are refreshed freely.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from domain.incident import IncidentState
    from domain.runbook_texts import page_digest
    from workflows import search_attributes as sa


class Publisher:
    def __init__(self) -> None:
        self._published: dict[str, object] = {}

    def attributes(self, st: IncidentState) -> None:
        wanted: dict[str, object] = {
            "id": st.incident_id,
            "severity": st.severity.value,
            "status": st.status.value,
            "assignee": st.assignee or "",
            "false_positive": st.false_positive,
            "resolved_at": st.resolved_at,
        }
        if wanted == self._published:
            return
        first = not self._published
        updates = [
            update
            for key, update in _updates(st).items()
            if update is not None and (first or self._published.get(key) != wanted.get(key))
        ]
        workflow.upsert_search_attributes(updates)
        self._published = wanted

    @staticmethod
    def details(st: IncidentState, delivery_problem: str | None) -> None:
        """The UI's current details: what a responder reads first."""
        nxt = (
            f"{st.next_step_label} at {st.next_step_at:%Y-%m-%d %H:%M:%S} UTC"
            if st.next_step_at
            else "none"
        )
        problem = f"\n\n**Delivery**: {delivery_problem}" if delivery_problem else ""
        diagnostics = page_digest(st)
        checks = f"\n\n**{diagnostics.replace(':', '**:', 1)}" if diagnostics else ""
        waiting = [m for m in st.mitigations if m.waiting]
        proposals = "".join(
            f"\n\n**Awaiting approval**: #{m.number} {m.action} (proposed by {m.proposed_by})"
            for m in waiting
        )
        workflow.set_current_details(
            f"**{st.incident_id}** · {st.severity.value} · {st.service}\n\n"
            f"**Status**: {st.status.value}\n\n"
            f"**Assignee**: {st.assignee or 'unassigned'}\n\n"
            f"**Next escalation**: {nxt}{checks}{proposals}{problem}"
        )


def _updates(st: IncidentState) -> dict[str, SearchAttributeUpdate[Any] | None]:
    """Every attribute, keyed as in ``Publisher.attributes``; None: leave it alone."""
    return {
        "id": sa.INCIDENT_ID.value_set(st.incident_id or ""),
        "severity": sa.INCIDENT_SEVERITY.value_set(st.severity.value),
        "status": sa.INCIDENT_STATUS.value_set(st.status.value),
        "service": sa.INCIDENT_SERVICE.value_set(st.service),
        "dedup_key": sa.INCIDENT_DEDUP_KEY.value_set(st.dedup_key[:200]),
        "source": sa.INCIDENT_SOURCE.value_set(st.source),
        "opened_at": sa.INCIDENT_OPENED_AT.value_set(st.opened_at),
        "false_positive": sa.INCIDENT_FALSE_POSITIVE.value_set(st.false_positive),
        "assignee": sa.INCIDENT_ASSIGNEE.value_set(st.assignee)
        if st.assignee
        else sa.INCIDENT_ASSIGNEE.value_unset(),
        "resolved_at": sa.INCIDENT_RESOLVED_AT.value_set(st.resolved_at)
        if st.resolved_at is not None
        else None,
    }
