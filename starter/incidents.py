"""Starting and steering incident workflows: the one place clients talk to Temporal.

The HTTP API, Slack, SMS and the CLI all go through these functions, so every entry
point has the same durability (a 2xx only after Temporal accepted) and the same ids.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.store import IncidentEntry, Store
from activities.tickets import RewriteTicket
from domain import transitions
from domain.ids import incident_workflow_id, parse_incident_id
from domain.incident import (
    AcknowledgeRequest,
    AddResponderRequest,
    Alert,
    AlertAcknowledgeRequest,
    AlertResolveRequest,
    DiagnosticsRequest,
    EscalateRequest,
    IncidentInput,
    IncidentState,
    MitigationDecision,
    MitigationRequest,
    ResolveRequest,
    SeverityChangeRequest,
    Status,
    StatusUpdateRequest,
    TicketEdit,
)
from domain.maintenance import PagingHold
from domain.policy import Policy, Severity
from starter.connection import TASK_QUEUE
from storage.ticket_edits import TicketEdits
from workflows.incident import IncidentWorkflow
from workflows.postmortem import MarkReviewHeld, PostMortemState, PostMortemWorkflow
from workflows.ticket import ClosedTicketWorkflow


class IncidentNotFound(LookupError):
    pass


class ActionRejected(ValueError):
    """The workflow refused the action (resolved already, unknown person, ...)."""


class IncidentClosed(ActionRejected):
    """The incident's workflow has finished: it takes no more actions."""


def _static_summary(alert: Alert) -> str:
    return f"{alert.severity.value} · {alert.service} · {alert.summary}"[:400]


async def open_or_join(
    client: Client, alert: Alert, *, task_queue: str = TASK_QUEUE, hold: PagingHold | None = None
) -> WorkflowHandle[Any, Any]:
    """Signal-with-start: opens the incident for the alert's dedup key, or joins the open one.

    Returns once Temporal has durably recorded the alert. ``hold``: the service is in
    maintenance, and an incident this opens pages nobody until the window is over.
    """
    return await client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(hold=hold),
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
    client: Client,
    alert: Alert,
    open_incidents: OpenIncidents,
    *,
    task_queue: str = TASK_QUEUE,
    hold: PagingHold | None = None,
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
    handle = await open_or_join(client, alert, task_queue=task_queue, hold=hold)
    open_incidents.add(workflow_id)
    return _started(handle)


def _started(handle: WorkflowHandle[Any, Any]) -> bool:
    # The signal-with-start response says whether a new workflow (incident) was started.
    response = getattr(handle, "_start_workflow_response", None)
    return bool(getattr(response, "started", False))


async def trigger(client: Client, alert: Alert, *, task_queue: str = TASK_QUEUE) -> IncidentState:
    """Open or join, and wait for the incident id (for people who want to see it).

    The alert is durable (signal-with-start) before the wait begins. Update-with-start would
    save a round trip, but its update is not durable until a worker accepts it: under
    overload the wait failed and the workflow it had started ended without its alert.
    Now a failed wait only means the caller does not see the id yet.
    """
    handle = await open_or_join(client, alert, task_queue=task_queue)
    return await handle.execute_update(IncidentWorkflow.opened)


# A workflow task that a worker took and never answered (the worker died) is handed to
# another worker after this long; Temporal's default of 10 s would make a page whose step
# was in flight on a killed worker 10 s late. Kept by the runs that continue as new.
INCIDENT_TASK_TIMEOUT = timedelta(seconds=2)


def _start_options(alert: Alert, task_queue: str) -> dict[str, Any]:
    return {
        "id": incident_workflow_id(alert.dedup_key, alert.integration),
        "task_queue": task_queue,
        "task_timeout": INCIDENT_TASK_TIMEOUT,
        "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
        "id_reuse_policy": WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        "static_summary": _static_summary(alert),
    }


async def resolve_from_source(client: Client, request: AlertResolveRequest) -> bool:
    """The monitoring tool says the alert cleared. False when no incident is open for it."""
    return await _from_source(client, request, IncidentWorkflow.resolve_from_source)


async def acknowledge_from_source(client: Client, request: AlertAcknowledgeRequest) -> bool:
    """The monitoring tool acknowledged the alert (PagerDuty ``acknowledge``), attributed to
    the integration. False when no incident is open for it. The workflow ignores it for an
    incident that is acknowledged already."""
    return await _from_source(client, request, IncidentWorkflow.acknowledge_from_source)


async def _from_source(
    client: Client,
    request: AlertResolveRequest | AlertAcknowledgeRequest,
    signal: Callable[[IncidentWorkflow, Any], None],
) -> bool:
    """Signal the open incident of the alert's key; False when there is none."""
    handle = client.get_workflow_handle(
        incident_workflow_id(request.dedup_key, request.integration)
    )
    try:
        await handle.signal(signal, request)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def handle_for(
    client: Client, incident_id: str, *, store: Store | None = None
) -> WorkflowHandle[Any, Any]:
    """The workflow run of an incident, by its INC id.

    Through ``store``'s id -> run mapping (written when the id is allocated, so it works
    the moment ``trigger`` returns), with the run pinned: a later incident on the same
    workflow id (the same dedup key after resolution) is never acted on by mistake.
    Visibility (eventually consistent) only when the mapping has no row for the id.
    """
    if parse_incident_id(incident_id) is None:
        raise IncidentNotFound(f"{incident_id!r} is not an incident id (INC-YYYY-MM-DD-###)")
    entry = await asyncio.to_thread(store.incident, incident_id) if store is not None else None
    if entry is not None:
        assert store is not None
        handle = await _mapped_run(client, store, entry)
        if handle is not None:
            return handle
    handle = await _visible_run(client, f"IncidentId = '{incident_id}'")
    if handle is None:
        raise IncidentNotFound(f"no incident {incident_id}")
    return handle


async def _mapped_run(
    client: Client, store: Store, entry: IncidentEntry
) -> WorkflowHandle[Any, Any] | None:
    try:  # describe reads the workflow's own state: no visibility lag
        latest = await client.get_workflow_handle(entry.workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None  # gone (retention): visibility has the last word
        raise
    if latest.run_id == entry.run_id or await _continues(store, entry, latest):
        return client.get_workflow_handle(entry.workflow_id, run_id=latest.run_id)
    # The latest run is the next incident on this workflow id: ours has closed. Its last
    # run (it may have continued as new before resolution), else the run that opened it.
    closed = await _visible_run(
        client,
        f"WorkflowId = '{_quote(entry.workflow_id)}' AND IncidentId = '{entry.incident_id}'"
        " AND ExecutionStatus != 'Running'",
    )
    return closed or client.get_workflow_handle(entry.workflow_id, run_id=entry.run_id)


async def _continues(store: Store, entry: IncidentEntry, latest: WorkflowExecution) -> bool:
    """Whether a later run of the workflow is the same incident, continued as new.

    Continue-as-new carries the search attributes over, so the next incident's run also
    starts with the old IncidentId; but the old one was resolved before that run started,
    and the next incident allocates an id of its own.
    """
    attrs = latest.typed_search_attributes
    if _raw_attr(attrs, "IncidentId") != entry.incident_id:
        return False
    resolved_at = _raw_attr(attrs, "IncidentResolvedAt")
    if isinstance(resolved_at, datetime) and resolved_at <= latest.start_time:
        return False
    return await asyncio.to_thread(store.incident_for_run, entry.workflow_id, latest.run_id) is None


async def _visible_run(client: Client, condition: str) -> WorkflowHandle[Any, Any] | None:
    # Open runs come first, then closed ones by closing time: an incident's last run.
    query = f"WorkflowType = 'IncidentWorkflow' AND {condition}"
    async for execution in client.list_workflows(query, limit=1):
        return client.get_workflow_handle(execution.id, run_id=execution.run_id)
    return None


async def get_state(
    client: Client, incident_id: str, *, store: Store | None = None, policy: Policy | None = None
) -> IncidentState:
    """The incident's state; once closed, with the ticket edits made since (``policy``)."""
    handle = await handle_for(client, incident_id, store=store)
    state: IncidentState | None = await handle.query(IncidentWorkflow.state)
    if state is None:
        raise IncidentNotFound(f"{incident_id} has not opened yet")
    if state.incident_id != incident_id:  # a run that has not allocated its own id yet
        raise IncidentNotFound(f"no incident {incident_id}")
    if not state.is_open and store is not None and policy is not None:
        edits = await asyncio.to_thread(TicketEdits(store.database).for_incident, incident_id)
        state = transitions.with_closed_edits(state, policy, edits)
    return state


# An update accepted in a workflow task that then fails (a child's or an activity's result
# arrived while the task completed the run) is dropped by Temporal with this error; sent
# again under the same update id it is applied once.
_LOST_WITH_TASK = ("workflow task failure", "Workflow Task in failed state")
_UPDATE_TRIES = 3


async def run_update(
    handle: WorkflowHandle[Any, Any], update: Any, request: Any, update_id: str | None = None
) -> IncidentState:
    """``execute_update`` with clear errors: a refusal, or a closed incident (``update_id``
    lets Slack's retries of one click land once)."""
    update_id = update_id or f"action-{uuid.uuid4().hex}"
    for attempt in range(1, _UPDATE_TRIES + 1):
        try:
            result: IncidentState = await handle.execute_update(update, request, id=update_id)
            return result
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            raise ActionRejected(getattr(cause, "message", None) or str(cause)) from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise IncidentClosed("the incident is already resolved and closed") from err
            if attempt == _UPDATE_TRIES or not any(m in err.message for m in _LOST_WITH_TASK):
                raise
            await asyncio.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


async def acknowledge(
    client: Client, incident_id: str, request: AcknowledgeRequest, *, store: Store | None = None
) -> IncidentState:
    handle = await handle_for(client, incident_id, store=store)
    return await run_update(handle, IncidentWorkflow.acknowledge, request)


async def post_update(
    client: Client, incident_id: str, request: StatusUpdateRequest, *, store: Store | None = None
) -> IncidentState:
    handle = await handle_for(client, incident_id, store=store)
    return await run_update(handle, IncidentWorkflow.post_update, request)


async def edit_ticket(
    client: Client,
    incident_id: str,
    request: TicketEdit,
    *,
    store: Store | None = None,
    policy: Policy | None = None,
    task_queue: str = TASK_QUEUE,
) -> IncidentState:
    """Set ticket fields: through the incident's workflow while it runs; once it has closed
    (with ``store`` and ``policy``), stored and laid over its final state, and the ticket is
    written again by a ``ClosedTicketWorkflow``."""
    handle = await handle_for(client, incident_id, store=store)
    try:
        return await run_update(handle, IncidentWorkflow.edit_ticket, request)
    except IncidentClosed:
        if store is None or policy is None:
            raise
    final = await _final_state(client, handle)
    try:
        transitions.check_person(policy, request.by)
        if not transitions.set_ticket(
            final.model_copy(deep=True), policy, request, request.by, datetime.now(UTC)
        ):
            raise transitions.InvalidTransition("say which ticket fields to set (e.g. user_impact)")
    except transitions.InvalidTransition as err:
        raise ActionRejected(str(err)) from None
    edits = TicketEdits(store.database)
    number = await asyncio.to_thread(edits.add, incident_id, request, datetime.now(UTC))
    await client.start_workflow(
        ClosedTicketWorkflow.run,
        RewriteTicket(incident_id=incident_id, workflow_id=final.workflow_id, run_id=handle.run_id),
        id=f"ticket/{incident_id}/edit-{number}",
        task_queue=task_queue,
    )
    edited = transitions.with_closed_edits(
        final, policy, await asyncio.to_thread(edits.for_incident, incident_id)
    )
    await _tell_postmortem(client, edited)
    return edited


async def _tell_postmortem(client: Client, edited: IncidentState) -> None:
    """An open post-mortem's document shows the ticket's later edits too; a complete one
    (its workflow closed: NOT_FOUND) stays as it was completed."""
    if edited.postmortem_workflow_id is None:
        return
    handle = client.get_workflow_handle(edited.postmortem_workflow_id)
    try:
        await handle.signal(PostMortemWorkflow.ticket_edited, edited.ticket)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise


async def _final_state(client: Client, handle: WorkflowHandle[Any, Any]) -> IncidentState:
    closed = client.get_workflow_handle(handle.id, run_id=handle.run_id, result_type=IncidentState)
    final: IncidentState = await closed.result()
    return final


async def change_severity(
    client: Client, incident_id: str, request: SeverityChangeRequest, *, store: Store | None = None
) -> IncidentState:
    handle = await handle_for(client, incident_id, store=store)
    return await run_update(handle, IncidentWorkflow.change_severity, request)


async def escalate(
    client: Client, incident_id: str, request: EscalateRequest, *, store: Store | None = None
) -> IncidentState:
    handle = await handle_for(client, incident_id, store=store)
    return await run_update(handle, IncidentWorkflow.escalate, request)


async def add_responder(
    client: Client, incident_id: str, request: AddResponderRequest, *, store: Store | None = None
) -> IncidentState:
    handle = await handle_for(client, incident_id, store=store)
    return await run_update(handle, IncidentWorkflow.add_responder, request)


async def resolve(
    client: Client, incident_id: str, request: ResolveRequest, *, store: Store | None = None
) -> IncidentState:
    handle = await handle_for(client, incident_id, store=store)
    return await run_update(handle, IncidentWorkflow.resolve, request)


async def act(
    client: Client,
    incident_id: str,
    update: Any,
    request: Any,
    *,
    store: Store | None = None,
) -> IncidentState:
    """Any person's action on the incident, by its update."""
    handle = await handle_for(client, incident_id, store=store)
    return await run_update(handle, update, request)


async def run_diagnostics(
    client: Client, incident_id: str, request: DiagnosticsRequest, *, store: Store | None = None
) -> IncidentState:
    return await act(client, incident_id, IncidentWorkflow.run_diagnostics, request, store=store)


async def propose_mitigation(
    client: Client, incident_id: str, request: MitigationRequest, *, store: Store | None = None
) -> IncidentState:
    return await act(client, incident_id, IncidentWorkflow.propose_mitigation, request, store=store)


async def decide_mitigation(
    client: Client, incident_id: str, request: MitigationDecision, *, store: Store | None = None
) -> IncidentState:
    return await act(client, incident_id, IncidentWorkflow.decide_mitigation, request, store=store)


# Sort orders of the incident list; "-opened" (newest first) is the default.
SORTS = ("-opened", "opened", "severity", "status")
_SEVERITY_RANK = {s.value: rank for rank, s in enumerate(Severity)}  # P0 first
_STATUS_RANK = {s.value: rank for rank, s in enumerate(Status)}  # Triggered first


@dataclass
class _Listed:
    """One incident as visibility shows it (its latest run)."""

    incident_id: str
    severity: str | None
    status: str | None
    service: str | None
    assignee: str | None
    opened_at: datetime | None
    workflow_id: str
    started: datetime

    def order(self) -> tuple[float, date, int]:
        """Opening time, then id: a total order, oldest first."""
        day, number = parse_incident_id(self.incident_id) or (date.min, 0)
        at = self.opened_at.timestamp() if self.opened_at else float("-inf")
        return at, day, number

    def as_row(self, entry: IncidentEntry | None) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "severity": self.severity,
            "status": self.status,
            "service": self.service,
            "assignee": self.assignee,
            "opened_at": self.opened_at.isoformat() if self.opened_at else None,
            "workflow_id": self.workflow_id,
            "summary": entry.summary if entry is not None else None,
        }


async def list_incidents(
    client: Client,
    *,
    status: str | None = None,
    severity: str | None = None,
    service: str | None = None,
    sort: str = "-opened",
    limit: int = 100,
    store: Store | None = None,
) -> list[dict[str, Any]]:
    """Incidents matching the filters, in ``sort`` order (no workflow is woken).

    Status, severity and assignee come from visibility (they change); the summary from
    ``store`` (written with the id). Visibility cannot order by opening time, so for
    "-opened"/"opened" the store picks a time window holding the ``limit`` newest (oldest)
    incidents, widened until enough match the filters; "severity" and "status" read every
    matching incident.
    """
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    clauses = ["WorkflowType = 'IncidentWorkflow'", "IncidentId IS NOT NULL"]
    for name, value in (
        ("IncidentStatus", status),
        ("IncidentSeverity", severity),
        ("IncidentService", service),
    ):
        if value:
            clauses.append(f"{name} = '{_quote(value)}'")
    query = " AND ".join(clauses)
    if sort in ("-opened", "opened") and store is not None:
        found = await _opened_window(client, store, query, newest=sort == "-opened", limit=limit)
    else:
        found = await _visible_incidents(client, query)
    listed = sorted(found, key=_Listed.order, reverse=sort != "opened")  # newest first
    if sort == "severity":
        listed.sort(key=lambda r: _SEVERITY_RANK.get(r.severity or "", len(_SEVERITY_RANK)))
    elif sort == "status":
        listed.sort(key=lambda r: _STATUS_RANK.get(r.status or "", len(_STATUS_RANK)))
    listed = listed[:limit]
    entries: dict[str, IncidentEntry] = {}
    if store is not None and listed:
        entries = await asyncio.to_thread(store.incidents, [r.incident_id for r in listed])
    return [r.as_row(entries.get(r.incident_id)) for r in listed]


async def _opened_window(
    client: Client, store: Store, query: str, *, newest: bool, limit: int
) -> list[_Listed]:
    """Every matching incident opened within a window that holds at least ``limit`` of
    them, or all of them. Whatever the store holds, the result is right: an incident left
    out was opened before (after) every one returned."""
    window = limit
    while True:
        bound = await asyncio.to_thread(store.opened_bound, window, newest=newest)
        if bound is None:  # the window would hold every incident the store knows
            return await _visible_incidents(client, query)
        at = bound.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        found = await _visible_incidents(
            client, f"{query} AND IncidentOpenedAt {'>=' if newest else '<='} '{at}'"
        )
        if len(found) >= limit:
            return found
        window *= 4


async def _visible_incidents(client: Client, query: str) -> list[_Listed]:
    """Visibility rows, one per incident: an incident that continued as new has a row per
    run, and its latest run is the current one."""
    latest: dict[str, _Listed] = {}
    async for execution in client.list_workflows(query, page_size=1000):
        attrs = execution.typed_search_attributes
        incident_id = _raw_attr(attrs, "IncidentId")
        if not isinstance(incident_id, str):
            continue
        opened_at = _raw_attr(attrs, "IncidentOpenedAt")
        row = _Listed(
            incident_id=incident_id,
            severity=_raw_attr(attrs, "IncidentSeverity"),
            status=_raw_attr(attrs, "IncidentStatus"),
            service=_raw_attr(attrs, "IncidentService"),
            assignee=_raw_attr(attrs, "IncidentAssignee"),
            opened_at=opened_at if isinstance(opened_at, datetime) else None,
            workflow_id=execution.id,
            started=execution.start_time,
        )
        seen = latest.get(incident_id)
        if seen is None or row.started > seen.started:
            latest[incident_id] = row
    return list(latest.values())


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


def _raw_attr(attrs: Sequence[Any] | Any, name: str) -> Any:
    for pair in attrs:
        if pair.key.name == name:
            return pair.value
    return None


def _attr(attrs: Sequence[Any] | Any, name: str) -> Any:
    value = _raw_attr(attrs, name)
    return value.isoformat() if hasattr(value, "isoformat") else value
