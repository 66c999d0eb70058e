"""Starting and steering incident workflows: the one place clients talk to Temporal.

The HTTP API, Slack, SMS and the CLI all go through these functions, so every entry
point has the same durability (a 2xx only after Temporal accepted) and the same ids.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from domain.ids import incident_workflow_id, parse_incident_id
from domain.incident import (
    AcknowledgeRequest,
    AddResponderRequest,
    Alert,
    AlertAcknowledgeRequest,
    AlertResolveRequest,
    EscalateRequest,
    IncidentInput,
    IncidentState,
    ResolveRequest,
    SeverityChangeRequest,
    StatusUpdateRequest,
)
from starter.connection import TASK_QUEUE
from workflows.incident import IncidentWorkflow
from workflows.postmortem import MarkReviewHeld, PostMortemState, PostMortemWorkflow


class IncidentNotFound(LookupError):
    pass


class ActionRejected(ValueError):
    """The workflow refused the action (resolved already, unknown person, ...)."""


def _static_summary(alert: Alert) -> str:
    return f"{alert.severity.value} · {alert.service} · {alert.summary}"[:400]


async def open_or_join(
    client: Client, alert: Alert, *, task_queue: str = TASK_QUEUE
) -> WorkflowHandle[Any, Any]:
    """Signal-with-start: opens the incident for the alert's dedup key, or joins the open one.

    Returns once Temporal has durably recorded the alert.
    """
    return await client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(),
        **_start_options(alert, task_queue),
        start_signal="attach_alert",
        start_signal_args=[alert],
    )


class OpenIncidents:
    """Workflow ids of incidents this process recently saw open (bounded, oldest forgotten).

    Only a hint, used by ``attach``: a wrong entry costs one extra round trip, never an alert.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, workflow_id: object) -> bool:
        return workflow_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, workflow_id: str) -> None:
        self._ids[workflow_id] = None
        self._ids.move_to_end(workflow_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

    def discard(self, workflow_id: str) -> None:
        self._ids.pop(workflow_id, None)


async def attach(
    client: Client, alert: Alert, open_incidents: OpenIncidents, *, task_queue: str = TASK_QUEUE
) -> bool:
    """Open or join, as ``open_or_join``; True when a new incident was opened.

    In a storm nearly every alert joins an incident that is already open, and a plain
    signal costs Temporal (and this process) less than signal-with-start. So an incident
    seen open before gets a signal; if it has closed since, Temporal answers NOT_FOUND
    and the alert opens a new one with signal-with-start. Either way the alert is
    durably recorded when this returns.
    """
    workflow_id = incident_workflow_id(alert.dedup_key, alert.integration)
    if workflow_id in open_incidents:
        try:
            await client.get_workflow_handle(workflow_id).signal(
                IncidentWorkflow.attach_alert, alert
            )
            return False
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            open_incidents.discard(workflow_id)  # closed: this alert opens the next one
    handle = await open_or_join(client, alert, task_queue=task_queue)
    open_incidents.add(workflow_id)
    return _started(handle)


def _started(handle: WorkflowHandle[Any, Any]) -> bool:
    # The signal-with-start response says whether a new workflow (incident) was started.
    response = getattr(handle, "_start_workflow_response", None)
    return bool(getattr(response, "started", False))


async def trigger(client: Client, alert: Alert, *, task_queue: str = TASK_QUEUE) -> IncidentState:
    """Open or join, and wait for the incident id (for people who want to see it).

    Update-with-start: one round trip, and the alert is in the incident when it returns.
    """
    start = WithStartWorkflowOperation(
        IncidentWorkflow.run, IncidentInput(), **_start_options(alert, task_queue)
    )
    return await client.execute_update_with_start_workflow(
        IncidentWorkflow.trigger, alert, start_workflow_operation=start
    )


def _start_options(alert: Alert, task_queue: str) -> dict[str, Any]:
    return {
        "id": incident_workflow_id(alert.dedup_key, alert.integration),
        "task_queue": task_queue,
        "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
        "id_reuse_policy": WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        "static_summary": _static_summary(alert),
    }


async def resolve_from_source(client: Client, request: AlertResolveRequest) -> bool:
    """The monitoring tool says the alert cleared. False when no incident is open for it."""
    handle = client.get_workflow_handle(
        incident_workflow_id(request.dedup_key, request.integration)
    )
    try:
        await handle.signal(IncidentWorkflow.resolve_from_source, request)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def acknowledge_from_source(client: Client, request: AlertAcknowledgeRequest) -> bool:
    """The monitoring tool acknowledged the alert (PagerDuty ``acknowledge``), attributed to
    the integration. False when no incident is open for it. The workflow ignores it for an
    incident that is acknowledged already."""
    handle = client.get_workflow_handle(
        incident_workflow_id(request.dedup_key, request.integration)
    )
    try:
        await handle.signal(IncidentWorkflow.acknowledge_from_source, request)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def handle_for(client: Client, incident_id: str) -> WorkflowHandle[Any, Any]:
    """Find the workflow of an incident by its INC id (visibility), newest run first."""
    if parse_incident_id(incident_id) is None:
        raise IncidentNotFound(f"{incident_id!r} is not an incident id (INC-YYYY-MM-DD-###)")
    query = f"WorkflowType = 'IncidentWorkflow' AND IncidentId = '{incident_id}'"
    async for execution in client.list_workflows(query, limit=1):
        return client.get_workflow_handle(execution.id, run_id=execution.run_id)
    raise IncidentNotFound(f"no incident {incident_id}")


async def get_state(client: Client, incident_id: str) -> IncidentState:
    handle = await handle_for(client, incident_id)
    state = await handle.query(IncidentWorkflow.state)
    if state is None:
        raise IncidentNotFound(f"{incident_id} has not opened yet")
    return state


async def run_update(
    handle: WorkflowHandle[Any, Any], update: Any, request: Any, update_id: str | None = None
) -> IncidentState:
    """``execute_update`` with clear errors: a refusal, or a closed incident (``update_id``
    lets Slack's retries of one click land once)."""
    try:
        result: IncidentState = await handle.execute_update(update, request, id=update_id)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise ActionRejected(getattr(cause, "message", None) or str(cause)) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ActionRejected("the incident is already resolved and closed") from err
        raise
    return result


async def acknowledge(
    client: Client, incident_id: str, request: AcknowledgeRequest
) -> IncidentState:
    return await run_update(
        await handle_for(client, incident_id), IncidentWorkflow.acknowledge, request
    )


async def post_update(
    client: Client, incident_id: str, request: StatusUpdateRequest
) -> IncidentState:
    return await run_update(
        await handle_for(client, incident_id), IncidentWorkflow.post_update, request
    )


async def change_severity(
    client: Client, incident_id: str, request: SeverityChangeRequest
) -> IncidentState:
    return await run_update(
        await handle_for(client, incident_id), IncidentWorkflow.change_severity, request
    )


async def escalate(client: Client, incident_id: str, request: EscalateRequest) -> IncidentState:
    return await run_update(
        await handle_for(client, incident_id), IncidentWorkflow.escalate, request
    )


async def add_responder(
    client: Client, incident_id: str, request: AddResponderRequest
) -> IncidentState:
    return await run_update(
        await handle_for(client, incident_id), IncidentWorkflow.add_responder, request
    )


async def resolve(client: Client, incident_id: str, request: ResolveRequest) -> IncidentState:
    return await run_update(
        await handle_for(client, incident_id), IncidentWorkflow.resolve, request
    )


async def list_incidents(
    client: Client,
    *,
    status: str | None = None,
    severity: str | None = None,
    service: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Incidents from Temporal visibility, newest first (no workflow is woken)."""
    clauses = ["WorkflowType = 'IncidentWorkflow'", "IncidentId IS NOT NULL"]
    for name, value in (
        ("IncidentStatus", status),
        ("IncidentSeverity", severity),
        ("IncidentService", service),
    ):
        if value:
            clauses.append(f"{name} = '{_quote(value)}'")
    rows: list[dict[str, Any]] = []
    async for execution in client.list_workflows(" AND ".join(clauses), limit=limit):
        attrs = execution.typed_search_attributes
        rows.append(
            {
                "incident_id": _attr(attrs, "IncidentId"),
                "severity": _attr(attrs, "IncidentSeverity"),
                "status": _attr(attrs, "IncidentStatus"),
                "service": _attr(attrs, "IncidentService"),
                "assignee": _attr(attrs, "IncidentAssignee"),
                "opened_at": _attr(attrs, "IncidentOpenedAt"),
                "workflow_id": execution.id,
                "summary": execution.static_summary
                if hasattr(execution, "static_summary")
                else None,
            }
        )
    return rows


async def mark_review_held(
    client: Client, incident_id: str, request: MarkReviewHeld
) -> PostMortemState:
    from domain.ids import postmortem_workflow_id

    handle = client.get_workflow_handle(postmortem_workflow_id(incident_id))
    try:
        result: PostMortemState = await handle.execute_update(PostMortemWorkflow.mark_held, request)
    except WorkflowUpdateFailedError as err:
        raise ActionRejected(getattr(err.cause, "message", None) or str(err.cause)) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise IncidentNotFound(f"no post-mortem for {incident_id}") from err
        raise
    return result


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _attr(attrs: Sequence[Any] | Any, name: str) -> Any:
    for pair in attrs:
        if pair.key.name == name:
            value = pair.value
            return value.isoformat() if hasattr(value, "isoformat") else value
    return None
