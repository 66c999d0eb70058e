"""The incidents API (the CLI's backend): list, show, trigger and act on incidents; on-call; outbox.

Every action goes through ``starter.incidents`` and returns the incident's new state, or
409 with the workflow's reason when the transition is invalid. Calls that need a worker
(the incident id, queries, updates) give up after ``worker_timeout_s`` with a 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError

from domain.ids import incident_workflow_id, parse_incident_id
from domain.incident import (
    AcknowledgeRequest,
    AddResponderRequest,
    DiagnosticsRequest,
    EscalateRequest,
    IncidentState,
    MitigationDecision,
    MitigationRequest,
    ResolveRequest,
    SeverityChangeRequest,
    Status,
    StatusUpdateRequest,
    TicketEdit,
)
from domain.policy import Severity
from starter import incidents as fw
from starter.api.auth import require_api_token
from starter.api.context import ApiContext, get_ctx
from starter.api.errors import (
    AUTH_RESPONSES,
    BODY_RESPONSES,
    COMMON_RESPONSES,
    ErrorBody,
    ServiceUnavailable,
)
from starter.api.ingest_common import build_alert, new_dedup_key, open_alert
from starter.incidents import IncidentNotFound
from workflows.incident import IncidentWorkflow
from workflows.postmortem import MarkReviewHeld, PostMortemState

T = TypeVar("T")

router = APIRouter(
    tags=["incidents"],
    dependencies=[Depends(require_api_token)],
    responses={**AUTH_RESPONSES, **COMMON_RESPONSES},
)

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such incident"}
}
_ACTION: dict[int | str, dict[str, Any]] = {
    **BODY_RESPONSES,
    **_NOT_FOUND,
    409: {"model": ErrorBody, "description": "Invalid transition; `detail` says why"},
}

# Visibility queries refuse control characters; refuse them here with a clear 422.
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"

IncidentIdPath = Path(
    max_length=64, description="INC-YYYY-MM-DD-###", examples=["INC-2026-01-31-001"]
)


async def _with_worker(ctx: ApiContext, call: Awaitable[T]) -> T:
    """Await a call that needs a worker, but never hang the request on a missing one."""
    try:
        return await asyncio.wait_for(call, timeout=ctx.settings.worker_timeout_s)
    except TimeoutError:
        raise ServiceUnavailable("no worker answered in time; retry") from None


# ---- list, show, trigger ------------------------------------------------------------------


class IncidentRow(BaseModel):
    incident_id: str | None
    severity: str | None
    status: str | None
    service: str | None
    assignee: str | None
    opened_at: str | None
    workflow_id: str
    summary: str | None = None


IncidentSort = Literal["-opened", "opened", "severity", "status"]  # fw.SORTS (a test checks)


@router.get(
    "/incidents",
    response_model=list[IncidentRow],
    summary="List incidents, newest first (Temporal visibility; summaries from the id store)",
)
async def list_incidents(
    request: Request,
    status: Status | None = None,
    severity: Severity | None = None,
    service: str | None = Query(default=None, min_length=1, max_length=200, pattern=PRINTABLE),
    sort: IncidentSort = Query(
        default="-opened",
        description="-opened: newest first; opened: oldest first; severity: P0 first; "
        "status: Triggered first (these two then newest first)",
    ),
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    ctx = get_ctx(request)
    return await fw.list_incidents(
        await ctx.client(),
        status=status.value if status else None,
        severity=severity.value if severity else None,
        service=service,
        sort=sort,
        limit=limit,
        store=ctx.store(),
    )


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentState,
    responses=_NOT_FOUND,
    summary="An incident's state and timeline",
)
async def show(request: Request, incident_id: str = IncidentIdPath) -> IncidentState:
    ctx = get_ctx(request)
    state = fw.get_state(await ctx.client(), incident_id, store=ctx.store(), policy=ctx.policy())
    return await _with_worker(ctx, state)


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(min_length=1, max_length=200)
    severity: Severity
    summary: str = Field(min_length=1, max_length=1024)
    dedup_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Joins the open incident with this key",
    )
    details: dict[str, Any] = Field(default_factory=dict)
    source: Literal["api", "cli"] = "api"


class TriggerPending(BaseModel):
    status: Literal["pending"] = "pending"
    workflow_id: str
    dedup_key: str
    detail: str


@router.post(
    "/incidents",
    status_code=201,
    response_model=IncidentState,
    responses={
        **BODY_RESPONSES,
        202: {"model": TriggerPending, "description": "Recorded; no worker has given it an id yet"},
    },
    summary="Trigger an incident by hand",
)
async def trigger(body: TriggerRequest, request: Request) -> Any:
    ctx = get_ctx(request)
    now = datetime.now(UTC)
    key = body.dedup_key or new_dedup_key(body.service, body.summary, now)
    alert = build_alert(
        source=body.source,
        dedup_key=key,
        summary=body.summary,
        service=body.service,
        severity=body.severity,
        received_at=now,
        details=body.details,
    )
    await open_alert(ctx, alert)  # durable from here on
    client = await ctx.client()
    handle = client.get_workflow_handle(incident_workflow_id(key, None))
    try:
        return await asyncio.wait_for(
            handle.execute_update(IncidentWorkflow.opened), timeout=ctx.settings.worker_timeout_s
        )
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # Cancelling a waiting update surfaces as the SDK's own error, not TimeoutError.
        pending = TriggerPending(
            workflow_id=handle.id, dedup_key=key, detail="recorded; waiting for a worker to open it"
        )
        return JSONResponse(pending.model_dump(), status_code=202)


# ---- actions ------------------------------------------------------------------------------


class _Strict(BaseModel):
    # A misspelt field is a 422 that names it, not a field silently left as it was.
    model_config = ConfigDict(extra="forbid")


class AcknowledgeBody(AcknowledgeRequest, _Strict):
    pass


class UpdateBody(StatusUpdateRequest, _Strict):
    pass


class TicketBody(TicketEdit, _Strict):
    pass


class SeverityBody(SeverityChangeRequest, _Strict):
    pass


class EscalateBody(EscalateRequest, _Strict):
    pass


class ResponderBody(AddResponderRequest, _Strict):
    pass


@router.post(
    "/incidents/{incident_id}/acknowledge", response_model=IncidentState, responses=_ACTION
)
async def acknowledge(
    body: AcknowledgeBody, request: Request, incident_id: str = IncidentIdPath
) -> IncidentState:
    ctx = get_ctx(request)
    client = await ctx.client()
    return await _with_worker(ctx, fw.acknowledge(client, incident_id, body, store=ctx.store()))


@router.post("/incidents/{incident_id}/updates", response_model=IncidentState, responses=_ACTION)
async def post_update(
    body: UpdateBody, request: Request, incident_id: str = IncidentIdPath
) -> IncidentState:
    ctx = get_ctx(request)
    client = await ctx.client()
    return await _with_worker(ctx, fw.post_update(client, incident_id, body, store=ctx.store()))


@router.post(
    "/incidents/{incident_id}/ticket",
    response_model=IncidentState,
    responses=_ACTION,
    summary="Set the Incident Report's fields (impact, cause, actions, prevention, lessons)",
)
async def edit_ticket(
    body: TicketBody, request: Request, incident_id: str = IncidentIdPath
) -> IncidentState:
    ctx = get_ctx(request)
    client = await ctx.client()
    edit = fw.edit_ticket(
        client,
        incident_id,
        body,
        store=ctx.store(),
        policy=ctx.policy(),
        task_queue=ctx.settings.task_queue,
    )
    return await _with_worker(ctx, edit)


@router.post("/incidents/{incident_id}/severity", response_model=IncidentState, responses=_ACTION)
async def change_severity(
    body: SeverityBody, request: Request, incident_id: str = IncidentIdPath
) -> IncidentState:
    ctx = get_ctx(request)
    client = await ctx.client()
    return await _with_worker(ctx, fw.change_severity(client, incident_id, body, store=ctx.store()))


@router.post("/incidents/{incident_id}/escalate", response_model=IncidentState, responses=_ACTION)
async def escalate(
    body: EscalateBody, request: Request, incident_id: str = IncidentIdPath
) -> IncidentState:
    ctx = get_ctx(request)
    client = await ctx.client()
    return await _with_worker(ctx, fw.escalate(client, incident_id, body, store=ctx.store()))


@router.post("/incidents/{incident_id}/responders", response_model=IncidentState, responses=_ACTION)
async def add_responder(
    body: ResponderBody, request: Request, incident_id: str = IncidentIdPath
) -> IncidentState:
    ctx = get_ctx(request)
    client = await ctx.client()
    return await _with_worker(ctx, fw.add_responder(client, incident_id, body, store=ctx.store()))


class ResolveBody(ResolveRequest, _Strict):
    # Strict: JSON `1` or "yes" for a flag is a client bug, not a false positive.
    false_positive: StrictBool = False


@router.post("/incidents/{incident_id}/resolve", response_model=IncidentState, responses=_ACTION)
async def resolve(
    body: ResolveBody, request: Request, incident_id: str = IncidentIdPath
) -> IncidentState:
    ctx = get_ctx(request)
    client = await ctx.client()
    return await _with_worker(ctx, fw.resolve(client, incident_id, body, store=ctx.store()))


@router.post(
    "/incidents/{incident_id}/runbook",
    response_model=IncidentState,
    responses=_ACTION,
    summary="Run the service's runbook checks again (all, or one by name)",
)
async def run_diagnostics(
    body: DiagnosticsRequest, request: Request, incident_id: str = IncidentIdPath
) -> IncidentState:
    ctx = get_ctx(request)
    client = await ctx.client()
    return await _with_worker(ctx, fw.run_diagnostics(client, incident_id, body, store=ctx.store()))


@router.post(
    "/incidents/{incident_id}/mitigations",
    response_model=IncidentState,
    responses=_ACTION,
    summary="Propose one of the service's mitigations (runs at once when low risk)",
)
async def propose_mitigation(
    body: MitigationRequest, request: Request, incident_id: str = IncidentIdPath
) -> IncidentState:
    ctx = get_ctx(request)
    client = await ctx.client()
    return await _with_worker(
        ctx, fw.propose_mitigation(client, incident_id, body, store=ctx.store())
    )


class DecisionBody(BaseModel):
    by: str
    reason: str | None = Field(default=None, max_length=1000)


@router.post(
    "/incidents/{incident_id}/mitigations/{number}/{decision}",
    response_model=IncidentState,
    responses=_ACTION,
    summary="Approve or decline a proposed mitigation (high risk: not by its proposer)",
)
async def decide_mitigation(
    body: DecisionBody,
    request: Request,
    decision: Literal["approve", "decline"],
    incident_id: str = IncidentIdPath,
    number: int = Path(ge=1, le=10_000),
) -> IncidentState:
    ctx = get_ctx(request)
    client = await ctx.client()
    approve = decision == "approve"
    choice = MitigationDecision(by=body.by, proposal=number, approve=approve, reason=body.reason)
    return await _with_worker(
        ctx, fw.decide_mitigation(client, incident_id, choice, store=ctx.store())
    )


@router.post(
    "/incidents/{incident_id}/postmortem/held",
    response_model=PostMortemState,
    responses=_ACTION,
    summary="Record that the post-mortem review was held",
)
async def postmortem_held(
    body: MarkReviewHeld, request: Request, incident_id: str = IncidentIdPath
) -> PostMortemState:
    ctx = get_ctx(request)
    if parse_incident_id(incident_id) is None:
        raise IncidentNotFound(f"{incident_id!r} is not an incident id (INC-YYYY-MM-DD-###)")
    return await _with_worker(ctx, fw.mark_review_held(await ctx.client(), incident_id, body))


# ---- on-call and outbox -------------------------------------------------------------------


class OutboxEntry(BaseModel):
    id: int
    idempotency_key: str
    incident_id: str
    kind: str
    recipient: str
    channel: str
    subject: str
    text: str
    scheduled_at: datetime
    recorded_at: datetime
    status: str


@router.get(
    "/outbox", response_model=list[OutboxEntry], summary="Notifications delivered (the outbox)"
)
async def outbox(
    request: Request,
    incident_id: str | None = Query(default=None, min_length=1, max_length=64),
    limit: int = Query(default=200, ge=1, le=1000),
) -> list[OutboxEntry]:
    store = get_ctx(request).store()
    rows = await asyncio.to_thread(store.notifications, incident_id, limit)
    return [OutboxEntry(**row.as_dict()) for row in rows]
